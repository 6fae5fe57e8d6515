/* The upload page. It speaks the same uploads API as the descarteslabs client (protocol §5.3):
 *   1. POST {api}/uploads_v2 with the image document (session cookie + CSRF header),
 *   2. PUT each file's bytes to its resumable URL (XHR, for upload progress),
 *   3. PATCH the upload to status "pending",
 *   4. poll GET {api}/uploads_v2/{id}?include=events until success, failure or canceled. */
(function () {
  "use strict";

  var form = document.getElementById("upload-form");
  if (!form) { return; }

  var apiBase = form.getAttribute("data-api-base");
  var detailTemplate = form.getAttribute("data-detail-url-template");
  var imageTemplate = form.getAttribute("data-image-url-template");
  var csrfToken = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  var input = document.getElementById("file-input");
  var dropzone = document.getElementById("dropzone");
  var list = document.getElementById("file-list");
  var errors = document.getElementById("upload-errors");
  var startButton = document.getElementById("upload-start");
  var JSONAPI = "application/vnd.api+json";
  var TERMINAL = ["success", "failure", "canceled"];
  var POLL_DELAYS = [1000, 1000, 1000, 1000, 1000, 2000, 2000, 3000, 5000];
  var files = [];
  var busy = false;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function formatSize(bytes) {
    var units = ["bytes", "KB", "MB", "GB", "TB"];
    var value = bytes;
    var unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return (unit === 0 ? value : value.toFixed(1)) + " " + units[unit];
  }

  /* The client's make_valid_name: every run of characters outside [a-zA-Z0-9_.-] becomes one "_". */
  function validName(text) { return text.replace(/[^a-zA-Z0-9_.-]+/g, "_"); }
  function stem(fileName) { return fileName.replace(/\.[^.]*$/, ""); }

  function showErrors(messages) {
    errors.textContent = "";
    if (!messages.length) { errors.hidden = true; return; }
    var ul = el("ul");
    messages.forEach(function (message) { ul.appendChild(el("li", "", message)); });
    errors.appendChild(ul);
    errors.hidden = false;
  }

  /* ---- choosing files ---------------------------------------------------------------------------------- */
  function addFiles(fileList) {
    if (busy) { return; }
    Array.prototype.forEach.call(fileList, function (file) {
      var known = files.some(function (f) { return f.name === file.name && f.size === file.size; });
      if (!known) { files.push(file); }
    });
    renderSelection();
  }

  function renderSelection() {
    list.textContent = "";
    files.forEach(function (file, index) {
      var item = el("li", "file-item");
      var line = el("div", "line");
      line.appendChild(el("span", "name", file.name));
      var right = el("span", "state", formatSize(file.size) + " ");
      var remove = el("button", "button small link", "Remove");
      remove.type = "button";
      remove.setAttribute("aria-label", "Remove " + file.name);
      remove.addEventListener("click", function () { files.splice(index, 1); renderSelection(); });
      right.appendChild(remove);
      line.appendChild(right);
      item.appendChild(line);
      list.appendChild(item);
    });
  }

  input.addEventListener("change", function () { addFiles(input.files); input.value = ""; });
  ["dragenter", "dragover"].forEach(function (type) {
    dropzone.addEventListener(type, function (event) { event.preventDefault(); dropzone.classList.add("dragover"); });
  });
  ["dragleave", "drop"].forEach(function (type) {
    dropzone.addEventListener(type, function (event) { event.preventDefault(); dropzone.classList.remove("dragover"); });
  });
  dropzone.addEventListener("drop", function (event) {
    if (event.dataTransfer && event.dataTransfer.files) { addFiles(event.dataTransfer.files); }
  });
  form.addEventListener("reset", function () {
    if (busy) { return; }
    files = [];
    renderSelection();
    showErrors([]);
  });

  /* ---- talking to the API ------------------------------------------------------------------------------- */
  function apiErrorMessage(body, status) {
    if (body && body.errors && body.errors.length) {
      return body.errors.map(function (error) {
        var where = error.source && (error.source.pointer || error.source.parameter);
        var field = where ? where.split("/").pop() : "";
        return (field && field !== "data" ? field + ": " : "") + (error.detail || error.title || "error");
      }).join(" ");
    }
    return "The server answered " + status + ".";
  }

  function api(method, path, document) {
    return fetch(apiBase + path, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": JSONAPI, Accept: JSONAPI, "X-CSRFToken": csrfToken },
      body: document ? JSON.stringify(document) : undefined
    }).then(function (response) {
      return response.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
        if (!response.ok) { throw new Error(apiErrorMessage(body, response.status)); }
        return body;
      });
    });
  }

  function putFile(url, file, onProgress) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open("PUT", url);
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable) { onProgress(event.loaded / event.total); }
      });
      xhr.addEventListener("load", function () {
        if (xhr.status >= 200 && xhr.status < 300) { onProgress(1); resolve(); return; }
        var body = null;
        try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
        reject(new Error(apiErrorMessage(body, xhr.status)));
      });
      xhr.addEventListener("error", function () { reject(new Error("The connection failed while sending " + file.name + ".")); });
      xhr.addEventListener("abort", function () { reject(new Error("The transfer of " + file.name + " was aborted.")); });
      xhr.send(file);
    });
  }

  /* ---- one upload (one image) --------------------------------------------------------------------------- */
  function renderJob(job) {
    var item = el("li", "file-item");
    item.setAttribute("data-upload-job", job.name);
    var head = el("div", "line");
    head.appendChild(el("span", "name", job.name));
    job.badge = el("span", "badge transferring", "waiting");
    head.appendChild(job.badge);
    item.appendChild(head);
    job.bars = job.files.map(function (file) {
      var row = el("div");
      var line = el("div", "line");
      line.appendChild(el("span", "state", file.name));
      var percent = el("span", "state", "0%");
      line.appendChild(percent);
      var bar = el("div", "progress");
      bar.setAttribute("role", "progressbar");
      bar.setAttribute("aria-label", "Transfer of " + file.name);
      bar.setAttribute("aria-valuemin", "0");
      bar.setAttribute("aria-valuemax", "100");
      bar.setAttribute("aria-valuenow", "0");
      var fill = el("span");
      bar.appendChild(fill);
      row.appendChild(line);
      row.appendChild(bar);
      item.appendChild(row);
      return { bar: bar, fill: fill, percent: percent };
    });
    job.state = el("div", "state", "");
    item.appendChild(job.state);
    job.message = el("div", "message", "");
    item.appendChild(job.message);
    job.item = item;
    list.appendChild(item);
  }

  function setStatus(job, status, text) {
    job.badge.className = "badge " + status;
    job.badge.textContent = status;
    job.item.setAttribute("data-status", status);
    if (text !== undefined) { job.state.textContent = text; }
  }

  function setProgress(job, index, fraction) {
    var percent = Math.round(fraction * 100);
    var bar = job.bars[index];
    bar.fill.style.width = percent + "%";
    bar.bar.setAttribute("aria-valuenow", String(percent));
    bar.percent.textContent = percent + "%";
    if (percent === 100) { bar.bar.classList.add("done"); }
  }

  function link(template, id, text) {
    var a = el("a", "", text);
    a.href = template.replace("__id__", encodeURIComponent(id));
    return a;
  }

  function createDocument(job, attributes) {
    var productId = attributes.product;
    var imageId = productId + ":" + job.name;
    var image = { name: job.name, product_id: productId, acquired: attributes.acquired };
    if (attributes.cloud_fraction !== "") { image.cloud_fraction = Number(attributes.cloud_fraction); }
    if (attributes.tags.length) { image.tags = attributes.tags; }
    return {
      data: {
        type: "image_upload",
        attributes: {
          image: { data: { type: "image", id: imageId, attributes: image } },
          image_id: imageId,
          image_upload_options: { upload_type: "file", image_files: job.files.map(function (f) { return f.name; }) }
        }
      }
    };
  }

  function poll(job, attempt) {
    return api("GET", "/uploads_v2/" + encodeURIComponent(job.id) + "?include=events").then(function (body) {
      var status = body.data.attributes.status;
      var events = (body.included || []).filter(function (item) { return item.type === "image_upload_event"; });
      var last = events.length ? events[events.length - 1].attributes : null;
      setStatus(job, status, last ? last.event_type + ": " + last.message : "");
      if (TERMINAL.indexOf(status) === -1) {
        var delay = POLL_DELAYS[Math.min(attempt, POLL_DELAYS.length - 1)];
        return new Promise(function (resolve) { window.setTimeout(resolve, delay); }).then(function () {
          return poll(job, attempt + 1);
        });
      }
      job.state.textContent = "";
      if (status === "success") {
        job.state.appendChild(document.createTextNode("Ingested. "));
        job.state.appendChild(link(imageTemplate, body.data.attributes.image_id, "Open the image"));
        job.state.appendChild(document.createTextNode(" · "));
        job.state.appendChild(link(detailTemplate, job.id, "events"));
      } else {
        var failures = events.filter(function (e) { return ["ERROR", "CRITICAL"].indexOf(e.attributes.severity) !== -1; });
        var shown = failures.length ? failures[0].attributes.message : "The upload ended as " + status + ".";
        job.message.textContent = shown;
        job.state.appendChild(link(detailTemplate, job.id, "See all events"));
      }
      return status;
    });
  }

  function runJob(job, attributes) {
    setStatus(job, "transferring", "Creating the upload…");
    return api("POST", "/uploads_v2?include=events", createDocument(job, attributes)).then(function (body) {
      job.id = body.data.id;
      job.item.setAttribute("data-upload-id", job.id);
      var urls = body.data.attributes.resumable_urls || [];
      setStatus(job, "transferring", "Sending " + job.files.length + " file" + (job.files.length === 1 ? "" : "s") + "…");
      return Promise.all(job.files.map(function (file, index) {
        return putFile(urls[index], file, function (fraction) { setProgress(job, index, fraction); });
      }));
    }).then(function () {
      return api("PATCH", "/uploads_v2/" + encodeURIComponent(job.id) + "?include=events",
        { data: { type: "image_upload", id: job.id, attributes: { status: "pending" } } });
    }).then(function () {
      setStatus(job, "pending", "Queued for ingest…");
      return poll(job, 0);
    }).catch(function (error) {
      setStatus(job, "failure", "");
      job.message.textContent = error.message;
      if (job.id) {
        job.state.appendChild(link(detailTemplate, job.id, "Open the upload"));
      }
      return "failure";
    });
  }

  /* ---- submit -------------------------------------------------------------------------------------------- */
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (busy) { return; }
    var attributes = {
      product: form.elements.product.value,
      name: form.elements.name.value.trim(),
      acquired: form.elements.acquired.value,
      cloud_fraction: form.elements.cloud_fraction.value.trim(),
      tags: form.elements.tags.value.split(",").map(function (t) { return t.trim(); }).filter(Boolean)
    };
    var problems = [];
    if (!attributes.product) { problems.push("Choose the product the images belong to."); }
    if (!attributes.acquired) { problems.push("Give the acquisition date and time (required for uploads)."); }
    if (!files.length) { problems.push("Choose or drop at least one file."); }
    var cloud = Number(attributes.cloud_fraction);
    if (attributes.cloud_fraction !== "" && (isNaN(cloud) || cloud < 0 || cloud > 1)) {
      problems.push("The cloud fraction is a number from 0 to 1.");
    }
    showErrors(problems);
    if (problems.length) { return; }

    var multi = form.querySelector('input[name="mode"]:checked').value === "multi";
    var jobs;
    if (multi) {
      jobs = [{ name: validName(attributes.name || stem(files[0].name)), files: files.slice() }];
    } else {
      jobs = files.map(function (file) {
        var name = attributes.name ? (files.length === 1 ? attributes.name : attributes.name + "_" + stem(file.name))
          : stem(file.name);
        return { name: validName(name), files: [file] };
      });
    }
    busy = true;
    startButton.disabled = true;
    list.textContent = "";
    jobs.forEach(renderJob);
    jobs.reduce(function (previous, job) {
      return previous.then(function () { return runJob(job, attributes); });
    }, Promise.resolve()).then(function () {
      busy = false;
      files = [];
      startButton.disabled = false;
      form.setAttribute("data-finished", "true");
    });
  });
})();
