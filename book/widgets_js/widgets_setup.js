// Hand-written (not vendored). Loaded after require.js and before embed-amd.js; see nb_ipywidgets_js in _config.yml.
(function () {
  "use strict";

  // 1. The widget manager loads its Font Awesome fonts relative to its require.js module URL, which by default
  //    resolves against the page's folder (book/@jupyter-widgets/...). Resolve modules against _static/ instead,
  //    where scripts/vendor_widgets_js.sh puts the fonts.
  var src = document.currentScript && document.currentScript.src;
  if (src && window.require && window.require.config) {
    window.require.config({ baseUrl: src.slice(0, src.split("?")[0].lastIndexOf("/") + 1) });
  }

  // 2. The widget manager typesets labels with the MathJax 2 API (MathJax.Hub.Queue), but Sphinx loads MathJax 3,
  //    which has no Hub: every widget on a page with equations would throw. Give each MathJax object a small Hub
  //    that forwards to MathJax 3. MathJax 3 replaces window.MathJax while it starts, so attach it on every set.
  var hub = {
    Queue: function () {
      var mathjax = window.MathJax;
      Array.prototype.forEach.call(arguments, function (job) {
        if (Array.isArray(job) && job[0] === "Typeset" && mathjax && mathjax.typesetPromise) {
          mathjax.typesetPromise([job[2]]).catch(function () {});
        }
      });
    },
  };
  var withHub = function (value) {
    if (value && typeof value === "object" && !value.Hub) {
      value.Hub = hub;
    }
    return value;
  };
  var current = withHub(window.MathJax);
  Object.defineProperty(window, "MathJax", {
    configurable: true,
    enumerable: true,
    get: function () { return current; },
    set: function (value) { current = withHub(value); },
  });
})();
