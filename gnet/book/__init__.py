"""The book's helpers: what the chapters measure and draw, one module per concept.

Everything here serves the chapters in ``book/`` and needs the ``[book]`` extra (``pip install "gnet[book]"``:
scipy, scikit-image, ipywidgets, IPython, pandas) on top of matplotlib. The core of gnet (:mod:`gnet.model`,
:mod:`gnet.table1`, :mod:`gnet.analysis`, :mod:`gnet.data`, :mod:`gnet.train`) never imports this package.

* :mod:`gnet.book.figures`: the book's figure style, branch colours, count formatting and figure finishing;
* :mod:`gnet.book.glue`: MyST-NB's ``glue``, with a fallback so chapters also run on Colab and in plain Jupyter;
* :mod:`gnet.book.widgets`: the note placed beside controls that need a live kernel;
* :mod:`gnet.book.dataset`: how a chapter finds Imagenette, and the note it shows when the images are missing;
* :mod:`gnet.book.diagrams`: SVG diagrams of a module and of the whole network, drawn from the model itself;
* :mod:`gnet.book.correlation`: the sparse correlation structure of photographs (chapter "Why go wide");
* :mod:`gnet.book.stacks`: stacks of naive and of reduced Inception modules, measured and plotted;
* :mod:`gnet.book.explorer`: the Inception width explorers, in the browser and with live ipywidgets;
* :mod:`gnet.book.budget`: the whole-network budget explorer (chapter 5), in the browser and with live ipywidgets;
* :mod:`gnet.book.claims`: the whole network against the paper's claims, reference models and variants;
* :mod:`gnet.book.gradients`: how much gradient reaches each layer, and what the auxiliary heads add;
* :mod:`gnet.book.runs`: recorded runs, and figures of a run (its curves, per-class accuracy, confusion matrix);
* :mod:`gnet.book.benchmarks`: the committed benchmark results the chapters quote, and reading them;
* :mod:`gnet.book.trained`: the trained network against its random twin (correlations, receptive fields, ablations);
* :mod:`gnet.book.branches`: what the trained branches see: feature visualisations, dataset examples, the colour and
  curve indices and the branch-specialisation test (chapter 9).
"""
