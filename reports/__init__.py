"""The reporter: renders run results as the paper's Tables 1-3 and Figure 6 (HTML, CSV, Markdown, LaTeX).

Nothing is rendered yet; this package is filled in by issue 3 of 6.
"""
