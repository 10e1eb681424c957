"""Seed-level check of the published 3-seed CPU study, from its published tables alone.

    python docs/results/seed_level_check.py

The study's run folders (per-image and per-seed metrics) were not kept, so the image-level intervals cannot be
recomputed. What the tables do publish per row is the mean, std (ddof 1) and count of the seeds' means
(`<key>_seed_mean`, `<key>_seed_std`, `<key>_seeds`). From those this script recomputes, for both readings
(`cpu_study/`: last weights, as `configs/cpu_study.yaml` declared; `cpu_study_best/`: best held-out step, a
rescoring chosen after the run) and for validation PSNR and SSIM:

  (a) each row's seed std against the width of its image-level 95 % CI;
  (b) Welch t-tests on the seed means (unequal variances) with the Welch 95 % CI of the difference, for the
      ablation steps (Table 1) and every row against mbnet (Table 2). A paired test over seeds would need each
      seed's value of both rows; the tables publish only means and stds, so Welch is what they allow;
  (c) Holm's adjustment over every seed-level difference of one table (PSNR and SSIM together);
  (d) the rows below the identity row (the input image itself).

The verdict column uses the report's rule: "holds across seeds" needs >= MIN_SEEDS seeds in both rows, a
Holm-adjusted seed-level p < 0.05 and an image-level CI that excludes 0; "these weights only" when the
image-level CI excludes 0 but the rest does not hold; "tied" otherwise. With 3 seeds the first is out of reach.
"""
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

HERE = Path(__file__).resolve().parent
READINGS = {"last": HERE / "cpu_study" / "tables", "best": HERE / "cpu_study_best" / "tables"}
METRICS = {"val_psnr": "PSNR", "val_ssim": "SSIM"}
REFERENCE = {"table1": "baseline", "table2": "mbnet", "floor": "identity"}   # what each published Δ is against
ABLATION = [("extra_data", "baseline"), ("mbnet", "extra_data"), ("mbnet", "baseline")]
PEERS = ["baseline", "extra_data", "atst", "danet", "rd3d", "pgar", "identity"]   # Table 2: row - mbnet
MIN_SEEDS, ALPHA = 5, 0.05


def load(reading):
    """Table 1 and Table 2 of one reading, indexed by experiment."""
    return {t: pd.read_csv(READINGS[reading] / f"{t}.csv").set_index("experiment") for t in ("table1", "table2")}


def welch(m1, s1, n1, m2, s2, n2):
    """Welch t-test of mean1 - mean2 from summary stats: (delta, ci_low, ci_high, df, p)."""
    v1, v2 = s1 ** 2 / n1, s2 ** 2 / n2
    df = (v1 + v2) ** 2 / (v1 ** 2 / (n1 - 1) + v2 ** 2 / (n2 - 1))   # Welch-Satterthwaite
    half = stats.t.ppf(0.975, df) * np.sqrt(v1 + v2)
    p = stats.ttest_ind_from_stats(m1, s1, n1, m2, s2, n2, equal_var=False).pvalue
    return m1 - m2, m1 - m2 - half, m1 - m2 + half, df, p


def check_welch_ci():
    """The CI above equals scipy's on made-up samples with the same means, stds (ddof 1) and counts."""
    z = np.array([-1.0, 0.0, 1.0])                       # mean 0, std (ddof 1) 1
    a, b = 19.968 + 1.400 * z, 19.350 + 1.729 * z
    res = stats.ttest_ind(a, b, equal_var=False)
    ci = res.confidence_interval(0.95)
    mine = welch(19.968, 1.400, 3, 19.350, 1.729, 3)
    assert np.allclose([mine[1], mine[2], mine[4]], [ci.low, ci.high, res.pvalue]), (mine, ci, res.pvalue)
    return f"Welch CI check vs scipy.stats.ttest_ind(...).confidence_interval(): [{ci.low:+.3f}, {ci.high:+.3f}] " \
           f"p {res.pvalue:.3f} on both"


def holm(p):
    """Holm step-down: sort ascending, adjusted p_(i) = max_{j<=i} min(1, (m - j + 1) p_(j))."""
    p = np.asarray(p, float)
    order = np.argsort(p)
    scaled = np.minimum(1.0, (len(p) - np.arange(len(p))) * p[order])
    out = np.empty_like(p)
    out[order] = np.maximum.accumulate(scaled)
    return out


def image_delta(tables, a, b, key):
    """The published image-level Δ (a - b) and its 95 % CI, from whichever table has b (or a) as reference."""
    for table, ref in (("table1", "baseline"), ("table2", "mbnet")):
        t = tables[table]
        if b == ref and a in t.index:
            r = t.loc[a]
            return r[f"delta_{key}"], r[f"delta_{key}_ci_low"], r[f"delta_{key}_ci_high"]
        if a == ref and b in t.index:
            r = t.loc[b]
            return -r[f"delta_{key}"], -r[f"delta_{key}_ci_high"], -r[f"delta_{key}_ci_low"]
    if b == "identity":
        r = tables["table2"].loc[a]
        return r[f"floor_delta_{key}"], r[f"floor_delta_{key}_ci_low"], r[f"floor_delta_{key}_ci_high"]
    raise KeyError((a, b))


def compare(tables, pairs):
    """One row per (pair, metric): image-level Δ and CI, seed-level Welch Δ, CI, p; Holm over all of them."""
    rows, rows_of = [], tables["table2"]
    for key, name in METRICS.items():
        for a, b in pairs:
            ra, rb = rows_of.loc[a], rows_of.loc[b]
            d, lo, hi = image_delta(tables, a, b, key)
            s = welch(ra[f"{key}_seed_mean"], ra[f"{key}_seed_std"], ra[f"{key}_seeds"],
                      rb[f"{key}_seed_mean"], rb[f"{key}_seed_std"], rb[f"{key}_seeds"])
            rows.append(dict(metric=name, diff=f"{a} - {b}", img_delta=d, img_ci=(lo, hi),
                             seed_ci=(s[1], s[2]), df=s[3], p=s[4],
                             seeds=min(ra[f"{key}_seeds"], rb[f"{key}_seeds"])))
    out = pd.DataFrame(rows)
    out["p_holm"] = holm(out["p"])
    out["p_holm_metric"] = out.groupby("metric")["p"].transform(lambda p: holm(p.to_numpy()))
    out["verdict"] = [verdict(r) for r in out.itertuples()]
    return out


def verdict(r):
    excludes_0 = r.img_ci[0] > 0 or r.img_ci[1] < 0
    if excludes_0 and r.seeds >= MIN_SEEDS and r.p_holm < ALPHA:
        return "holds across seeds"
    return "these weights only" if excludes_0 else "tied"


def fmt(x, key):
    d = 3 if key == "PSNR" else 4
    return f"{x:+.{d}f}"


def show(df, title):
    print(f"\n{title}")
    print(f"{'':5} {'difference':22} {'image-level Δ [95% CI]':32} {'seed-level Welch 95% CI':24} "
          f"{'df':>4} {'p':>6} {'Holm':>6} {'Holm/m':>6}  verdict")
    for r in df.itertuples():
        img = f"{fmt(r.img_delta, r.metric)} [{fmt(r.img_ci[0], r.metric)}, {fmt(r.img_ci[1], r.metric)}]"
        sd = f"[{fmt(r.seed_ci[0], r.metric)}, {fmt(r.seed_ci[1], r.metric)}]"
        print(f"{r.metric:5} {r.diff:22} {img:32} {sd:24} {r.df:4.1f} {r.p:6.4f} {r.p_holm:6.4f} "
              f"{r.p_holm_metric:6.4f}  {r.verdict}")


def spread(tables, reading):
    print(f"\n(a) {reading}: seed std of the seeds' means vs the width of the image-level 95 % CI")
    print(f"{'row':11} {'PSNR seed std':>13} {'CI width':>9} {'ratio':>6}   {'SSIM seed std':>13} {'CI width':>9} "
          f"{'ratio':>6}")
    for name, r in tables["table2"].iterrows():
        cells = []
        for key in METRICS:
            w = r[f"{key}_ci_high"] - r[f"{key}_ci_low"]
            cells.append(f"{r[f'{key}_seed_std']:13.4f} {w:9.4f} {r[f'{key}_seed_std'] / w:6.2f}")
        print(f"{name:11} " + "   ".join(cells))


def below_input(tables, reading):
    t = tables["table2"]
    pairs = [(a, "identity") for a in t.index if a != "identity"]
    df = compare(tables, pairs)
    print(f"\n(d) {reading}: rows vs the identity row (input image; "
          f"PSNR {t.loc['identity', 'val_psnr_mean']:.3f}, SSIM {t.loc['identity', 'val_ssim_mean']:.4f})")
    for key, name in METRICS.items():
        below = [f"{a} {t.loc[a, f'{key}_mean']:.4f}" for a in t.index
                 if a != "identity" and t.loc[a, f"{key}_mean"] < t.loc["identity", f"{key}_mean"]]
        print(f"  {name} below the input: {', '.join(below) or 'none'}")
    show(df, f"    row - identity ({reading}; identity has no seed spread, so Welch is a one-sample t on the row's "
             f"seeds, df = 2; Holm over these {len(df)})")


def relighting_note():
    t = pd.read_csv(HERE / "relighting" / "tables" / "table4.csv").set_index("experiment")
    seeds = ", ".join(f"{e} {int(n)}" for e, n in t["val_psnr_seeds"].items())
    print(f"\nrelighting/ (Table 4): seeds per row: {seeds}. With 1 seed there is no seed spread and no "
          f"seed-level test; every mark there is about those weights only.")


def main():
    print(check_welch_ci())
    for reading in READINGS:
        tables = load(reading)
        print(f"\n===== {reading}: {READINGS[reading].parent.name}/ =====")
        spread(tables, reading)
        show(compare(tables, ABLATION), f"(b, c) {reading}, Table 1 ablation steps "
                                        f"(Holm over these {2 * len(ABLATION)}; Holm/m: within one metric)")
        show(compare(tables, [(a, "mbnet") for a in PEERS]), f"(b, c) {reading}, Table 2: row - mbnet "
                                                              f"(Holm over these {2 * len(PEERS)}; Holm/m: within one metric)")
        below_input(tables, reading)
    relighting_note()


if __name__ == "__main__":
    main()
