"""The reporter: turns stored run folders into the paper's Tables 1-3, Figure 6 and a report page.

It reads only what ``bench run`` wrote (laid out as :mod:`relight_base.run_folder` describes) and never
builds or runs a model:

* :mod:`reports.tables`: Tables 1-3 aggregated over seeds (``mean ± std``), next to the paper's numbers,
  as CSV, Markdown and LaTeX;
* :mod:`reports.figures`: the Figure 6 style visual comparison (PNG) and inline SVG plots
  (PSNR against time per image, training-loss curves);
* :mod:`reports.render`: loads and merges comparable run folders and writes ``report.html`` with
  ``tables/`` and ``figures/``.

It imports only :mod:`relight_base`, :mod:`datasets` and :mod:`models`, never :mod:`bench`; the caller passes
in whatever needs the benchmark's config (the validation-scene loader of the visual comparison).
"""
