"""The reporter: turns stored run folders into the paper's Tables 1-3, our Table 4, Figure 6 and a report page.

It reads only what ``bench run`` wrote (laid out as :mod:`relight_base.run_folder` describes, its rows as
:mod:`relight_base.results` defines them) and never builds or runs a model:

* :mod:`reports.loading`: reads run folders (results checked against the contract, older ones given its
  defaults) and refuses to merge ones that are not comparable;
* :mod:`reports.per_image`: the per-image metrics (``metrics_<split>.csv``), each image averaged over seeds;
* :mod:`reports.statistics`: bootstrap CIs and paired differences over images (``scipy.stats``), seeded: the
  test-set uncertainty of these trained weights;
* :mod:`reports.seed_level`: t-intervals and tests over the seeds' means, Holm, P(better): what retraining changes;
* :mod:`reports.ranking`, :mod:`reports.timing_phases`: which row is significantly best, or a tie; time is
  ranked only within one timing phase;
* :mod:`reports.deltas`: Δ against the reference rows (``report:`` section, :mod:`reports.settings`) at the image
  and seed levels, and each Δ's verdict;
* :mod:`reports.train_logs`: every seed's ``train_log.csv``: held-out curves over seeds, rank stability;
* :mod:`reports.reference_rows`: the paper's published rows and the NTIRE 2021 leaderboard;
* :mod:`reports.extra_rows`: rows scored from published images (``bench report --extra NAME=CSV``);
* :mod:`reports.tables`: Tables 1-4 as numeric frames; :mod:`reports.formats`, :mod:`reports.writers`,
  :mod:`reports.legend`, :mod:`reports.conventions`: their cells, CSV/JSON/Markdown/LaTeX and captions;
* :mod:`reports.provenance`: where the numbers came from, and the warnings that qualify them;
* :mod:`reports.figures` (drawing) and :mod:`reports.visuals` (what is drawn): the Figure 6 style visual
  comparison (PNG) and inline SVG plots (PSNR against time per image, training-loss and held-out curves);
* :mod:`reports.render`: builds the report and writes ``report.html`` with ``tables/`` and ``figures/``.

It imports only :mod:`relight_base` and :mod:`datasets`, never :mod:`bench`; the caller passes in whatever needs
the benchmark's config (the validation-scene loader of the visual comparison).
"""
