/* Tessera web UI: small progressive enhancements shared by every page (no inline scripts: CSP). */
(function () {
  "use strict";

  /* Forms with data-confirm ask before submitting (deletions, revocations). */
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  /* Copy buttons: data-copy-target names the element whose text is copied. */
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy-target]");
    if (!button) { return; }
    var source = document.getElementById(button.getAttribute("data-copy-target"));
    if (!source) { return; }
    var text = source.textContent;
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied";
      window.setTimeout(function () { button.textContent = label; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { selectText(source); });
    } else {
      selectText(source);
      try { document.execCommand("copy"); done(); } catch (e) { /* the text stays selected for Ctrl-C */ }
    }
  });

  function selectText(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  /* Principal picker of the sharing page: appends the chosen principal to the owners/writers/readers list. */
  function setupPicker(root) {
    var choice = root.querySelector("#principal-choice");
    var typed = root.querySelector("#principal-typed");
    var role = root.querySelector("#principal-role");
    var message = root.querySelector("[data-principal-message]");
    var pattern = /^(user|email|group|org|access-id):\S{1,250}$/;
    root.querySelector("[data-principal-add]").addEventListener("click", function () {
      var value = (typed.value || "").trim() || (choice ? choice.value : "");
      if (!pattern.test(value)) {
        message.textContent = "A principal starts with user:, email:, group:, org: or access-id:.";
        return;
      }
      if (role.value === "owners" && !/^(user|org|access-id):/.test(value)) {
        message.textContent = "Owners can only be user:, org: or access-id: principals.";
        return;
      }
      var area = document.getElementById("id_" + role.value);
      var lines = area.value.split(/[\n,]/).map(function (s) { return s.trim(); }).filter(Boolean);
      if (lines.indexOf(value) === -1) { lines.push(value); }
      area.value = lines.join("\n");
      typed.value = "";
      message.textContent = "Added " + value + " to " + role.value + ". Save to apply.";
    });
  }

  /* Progress of a product job (delete related objects, apply ACLs), polled as JSON. */
  function setupTask(root) {
    var url = root.getAttribute("data-task-url");
    var bar = root.querySelector(".progress");
    var fill = bar.querySelector("span");
    var label = root.querySelector("[data-task-label]");
    var count = root.querySelector("[data-task-count]");
    var reload = root.getAttribute("data-reload-when-done") === "true";
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.json(); })
        .then(function (state) {
          root.hidden = false;
          var percent = state.percent === undefined ? 0 : state.percent;
          fill.style.width = percent + "%";
          bar.setAttribute("aria-valuenow", String(percent));
          count.textContent = state.objects_done + " done" + (state.remaining ? ", " + state.remaining + " left" : "");
          if (state.status === "RUNNING") {
            window.setTimeout(poll, 1000);
            return;
          }
          if (state.status === "SUCCESS") {
            bar.classList.add("done");
            fill.style.width = "100%";
            label.textContent = "Done.";
          } else if (state.status === "FAILURE") {
            bar.classList.add("failed");
            label.textContent = "Failed: " + (state.errors || []).join("; ");
          }
          if (reload && state.status !== "NONE") { window.setTimeout(function () { window.location.reload(); }, 600); }
        })
        .catch(function () { window.setTimeout(poll, 3000); });
    }
    if (root.getAttribute("data-task-running") === "true") { poll(); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-principal-picker]").forEach(setupPicker);
    document.querySelectorAll("[data-task-url]").forEach(setupTask);
  });
})();
