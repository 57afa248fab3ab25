"""The study's record: what this reproduction of the paper ran, and how its results are read.

The library (everything in :mod:`tdlib` outside this package) is the method; this package holds
the study made with it, for the notebooks, tools and tests:

* :mod:`~tdlib.paper.plans`: the committed evaluations (``results/eval/``) and how to run them;
* :mod:`~tdlib.paper.arms`: the Rainbow ablation arms of Figure 5;
* :mod:`~tdlib.paper.runs`: the committed evaluation CSVs read as one table;
* :mod:`~tdlib.paper.solve_rates`: solve rates over budgets and seeds (Figures 4 and 5's tables);
* :mod:`~tdlib.paper.plots`: their curves;
* :mod:`~tdlib.paper.claims`: the paper's ablation claims judged on them (notebook 09);
* :mod:`~tdlib.paper.training_curves`: the shipped networks' training curves (notebook 05);
* :mod:`~tdlib.paper.curve_fits`: training curves as lines in log examples (notebook 10);
* :mod:`~tdlib.paper.edit_places`, :mod:`~tdlib.paper.value_studies`: what the policies and
  value networks get wrong (notebooks 05 and 10).

This package imports the library; the library never imports it.
"""
