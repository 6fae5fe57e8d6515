/* Upload detail: re-fetch the status and event timeline while the upload is not finished. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("upload-live");
    if (!root || root.getAttribute("data-terminal") === "true") { return; }
    var url = root.getAttribute("data-live-url");
    var delay = 1000;
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.text();
        })
        .then(function (html) {
          root.innerHTML = html;
          var section = root.querySelector("[data-terminal]");
          if (section && section.getAttribute("data-terminal") === "true") {
            // Finished: reload once so the whole page (actions, files, details) shows the final state.
            window.location.reload();
            return;
          }
          delay = Math.min(delay + 500, 5000);
          window.setTimeout(poll, delay);
        })
        .catch(function () { window.setTimeout(poll, 5000); });
    }
    window.setTimeout(poll, delay);
  });
})();
