"""Refit the latency model on every usable measured row and rewrite kb/data/latency_fit.json.

    .venv/bin/python benchmarks/fit.py

Reproducible: same rows, same start, same result. Stored beside the parameters, for the uncertainty each
prediction states: the leave-one-family-out error (inside the calibrated range) and the transfer error
(leave one architecture class out, and the published runs of other labs: outside it).
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
from _data import seed_data, split_rows
from accuracy import published_errors

from kb.latency import FIT_FILE
from planner.calibration import ape, build_dataset, data_version, fit, leave_one_class_out, leave_one_model_out


def main() -> None:
    catalog, rows = seed_data()
    calibration, published = split_rows(rows)
    data = build_dataset(calibration, catalog)
    params = fit(data)
    held = leave_one_model_out(data)
    cv = {"ttft": round(float(np.median(ape(held.ttft, data.ttft))), 1),
          "tpot": round(float(np.median(ape(held.tpot, data.tpot))), 1)}
    by_class = leave_one_class_out(data, catalog)
    published_ttft, published_tpot = published_errors(params, published, catalog)
    # Per metric, the worse of two ways the fit transfers: a whole architecture class unseen, and published runs
    # of other labs (other models, GPUs and harnesses).
    transfer = {"ttft": round(max(float(np.median(ape(by_class.ttft, data.ttft))), published_ttft), 1),
                "tpot": round(max(float(np.median(ape(by_class.tpot, data.tpot))), published_tpot), 1)}
    fitted = [r for r, ok in zip(data.rows, data.fitted) if ok]
    params = params.model_copy(update={
        "data_version": data_version(fitted), "n_rows": len(fitted), "cv_median_ape": cv, "transfer_ape": transfer,
        "fitted_at": dt.date.today().isoformat(),
        "method": "Levenberg-Marquardt, soft-L1 log residuals of mean TTFT and TPOT of vLLM >= 0.15 rows; rows with "
                  "attention DP or > 8 GPUs per replica left out; published runs of other labs kept out as transfer checks",
        "calibrated": {"gpus": sorted({r.gpu for r in fitted}),
                       "models": sorted({catalog.model(r.model).hf_id for r in fitted}),
                       "dtypes": sorted({r.weight_dtype for r in fitted})},
    })
    tmp = FIT_FILE.with_suffix(".tmp")
    tmp.write_text(json.dumps(params.model_dump(mode="json"), indent=1) + "\n")
    tmp.replace(FIT_FILE)
    print(f"fitted {len(fitted)} rows (data {params.data_version}); held-out median error TTFT {cv['ttft']} %, "
          f"TPOT {cv['tpot']} %; transfer TTFT {transfer['ttft']} %, TPOT {transfer['tpot']} %; wrote {FIT_FILE}")


if __name__ == "__main__":
    main()
