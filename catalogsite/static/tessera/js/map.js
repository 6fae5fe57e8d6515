/* Footprint maps with Leaflet (served from our own static files). Each element with data-map gets a map:
 *   data-geojson-url   a URL answering a GeoJSON FeatureCollection, or
 *   data-geojson       the FeatureCollection itself;
 *   data-basemap-url   an XYZ tile URL template; empty for none;
 *   data-tiles-url     the images' own pixels as XYZ tiles from /raster/v2/tiles (empty for none).
 * Footprints are drawn whatever happens to the tiles, on a plain background when they cannot load. */
(function () {
  "use strict";

  var STYLE = { color: "#0f5f8c", weight: 2, fillColor: "#13a0a0", fillOpacity: 0.22 };
  var HOVER = { weight: 3, fillOpacity: 0.4 };
  // Over the imagery layer the footprints are outlines, so the pixels stay visible.
  var OUTLINE = { color: "#0f5f8c", weight: 2, fillColor: "#13a0a0", fillOpacity: 0.04 };

  function showMessage(element, text) {
    var note = document.createElement("div");
    note.className = "map-empty";
    note.textContent = text;
    element.appendChild(note);
  }

  function draw(map, element, collection, style) {
    var layer = L.geoJSON(collection, {
      style: function () { return style; },
      onEachFeature: function (feature, featureLayer) {
        var props = feature.properties || {};
        if (props.name) {
          featureLayer.bindTooltip(props.name + (props.acquired ? " · " + props.acquired.slice(0, 10) : ""), { sticky: true });
        }
        if (props.url) {
          featureLayer.on("click", function () { window.location.href = props.url; });
          featureLayer.on("mouseover", function () { featureLayer.setStyle(HOVER); });
          featureLayer.on("mouseout", function () { featureLayer.setStyle(style); });
        }
      }
    }).addTo(map);
    var count = (collection.features || []).length;
    element.setAttribute("data-feature-count", String(count));
    if (count > 0) {
      map.fitBounds(layer.getBounds(), { padding: [24, 24], maxZoom: 14 });
    } else {
      map.setView([20, 0], 1);
      showMessage(element, "No footprints to show");
    }
    if (collection.truncated) {
      showMessage(element, "Showing the first " + count + " footprints; filter to see others");
    }
    element.setAttribute("data-map-ready", "true");
  }

  function setup(element) {
    var map = L.map(element, { worldCopyJump: true, scrollWheelZoom: false });
    map.setView([20, 0], 1);
    var tiles = element.getAttribute("data-basemap-url");
    if (tiles) {
      var layer = L.tileLayer(tiles, {
        maxZoom: 19,
        attribution: element.getAttribute("data-basemap-attribution") || ""
      });
      layer.on("tileerror", function () { element.setAttribute("data-basemap-failed", "true"); });
      layer.addTo(map);
    }
    var pixels = element.getAttribute("data-tiles-url");
    if (pixels) {
      // The catalog's own imagery above the basemap, below the footprint outlines.
      var imagery = L.tileLayer(pixels, { maxZoom: 22, maxNativeZoom: 18, opacity: 1 });
      imagery.on("tileload", function () { element.setAttribute("data-imagery-loaded", "true"); });
      imagery.addTo(map);
    }
    var style = pixels ? OUTLINE : STYLE;
    element.addEventListener("focus", function () { map.scrollWheelZoom.enable(); });
    element.addEventListener("click", function () { map.scrollWheelZoom.enable(); });
    var inline = element.getAttribute("data-geojson");
    if (inline) {
      draw(map, element, JSON.parse(inline), style);
      return;
    }
    fetch(element.getAttribute("data-geojson-url"), { credentials: "same-origin", headers: { Accept: "application/geo+json, application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (collection) { draw(map, element, collection, style); })
      .catch(function () {
        showMessage(element, "The footprints could not be loaded");
        element.setAttribute("data-map-ready", "error");
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (typeof L === "undefined") { return; }
    document.querySelectorAll("[data-map]").forEach(setup);
  });
})();
