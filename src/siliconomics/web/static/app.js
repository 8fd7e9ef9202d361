// Draw every plotly figure of the page: <div data-fig="ID"> takes its figure from the JSON in
// <script type="application/json" id="ID">. Runs on load and after each htmx swap.
(function () {
  function draw(root) {
    root.querySelectorAll("[data-fig]").forEach(function (el) {
      if (el.dataset.drawn) return;
      var src = document.getElementById(el.dataset.fig);
      if (!src || !window.Plotly) return;
      var fig = JSON.parse(src.textContent);
      el.dataset.drawn = "1";
      window.Plotly.newPlot(el, fig.data, fig.layout, { responsive: true, displaylogo: false })
        .then(function () { el.classList.add("drawn"); });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSettle", function (e) { draw(e.target); });
})();
