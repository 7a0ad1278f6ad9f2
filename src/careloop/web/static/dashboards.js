// careloop measure dashboards: draw the Plotly figures the server embedded as JSON.
// Each <div data-plotly="ID"> names a <script type="application/json" id="ID">
// holding {data, layout}; plotly.js comes from the installed plotly package
// (/vendor/plotly.min.js). Without JavaScript the numbers tables and the PNG/SVG
// downloads still carry everything the charts show.
(function () {
  "use strict";
  if (typeof window.Plotly === "undefined") { return; }
  var config = { responsive: true, displaylogo: false,
                 modeBarButtonsToRemove: ["sendDataToCloud", "select2d", "lasso2d"] };
  Array.prototype.forEach.call(document.querySelectorAll("[data-plotly]"), function (el) {
    var source = document.getElementById(el.getAttribute("data-plotly"));
    if (!source) { return; }
    var figure = JSON.parse(source.textContent);
    window.Plotly.newPlot(el, figure.data, figure.layout || {}, config).then(function () {
      el.setAttribute("data-rendered", "yes");
    });
  });
})();
