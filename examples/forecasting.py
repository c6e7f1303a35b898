"""Forecast next year's sunspot number with an RNN, an LSTM and a GRU; compare with naive.

The data are the yearly mean sunspot numbers 1700-2008 (shipped with tinyrnn, public domain).
Each model reads the last ``--window`` years and predicts the next one (many-to-one). The last
``--test`` years are held out; on them every model, and the naive forecast "next year equals
this year", predicts one step ahead from the true history, and we compare root-mean-square
errors. The solar cycle (about 11 years) makes the naive forecast poor at the turns, which a
recurrent model that has seen whole cycles can anticipate.

Run: python examples/forecasting.py [--epochs 150] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import tinyrnn as tr
from tinyrnn import nn
from tinyrnn.data import load_sunspots


def make_windows(series: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """All (window, next value) pairs: inputs (N, window), targets (N,)."""
    inputs = np.stack([series[i : i + window] for i in range(len(series) - window)])
    return inputs, series[window:]


class Forecaster(nn.Module):
    """A recurrent layer over the window, then a linear read-out of the last hidden state."""

    def __init__(self, cell: str, hidden: int):
        super().__init__()
        layer = {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}[cell]
        self.rnn = layer(1, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: tr.Tensor) -> tr.Tensor:  # x: (B, window) -> (B,)
        out, _ = self.rnn(x.unsqueeze(-1))  # (B, window, hidden)
        return self.head(out[:, -1]).squeeze(-1)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=24, help="years the model reads")
    parser.add_argument("--test", type=int, default=40, help="held-out years at the end")
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="fewer epochs (used by tests)")
    parser.add_argument("--out", type=Path, default=Path("tinyrnn-out/examples"))
    args = parser.parse_args(argv)
    epochs = 60 if args.quick else args.epochs

    # ---- data: scale with statistics of the training years only ----
    years, counts = load_sunspots()
    split = len(counts) - args.test
    mean, std = counts[:split].mean(), counts[:split].std()
    series = ((counts - mean) / std).astype(np.float32)
    inputs, targets = make_windows(series, args.window)
    target_years = years[args.window :]
    is_test = target_years >= years[split]
    x_train, y_train = tr.tensor(inputs[~is_test]), tr.tensor(targets[~is_test])
    x_test = tr.tensor(inputs[is_test])
    actual = counts[split:]
    print(
        f"{len(counts)} years {years[0]}-{years[-1]}; training on {len(y_train)} windows of "
        f"{args.window} years, testing on {years[split]}-{years[-1]}"
    )

    # ---- the baseline: next year equals this year ----
    def rmse(pred: np.ndarray) -> float:
        return float(np.sqrt(np.mean((pred - actual) ** 2)))

    naive = counts[split - 1 : -1]
    results = {"naive (last value)": rmse(naive)}
    predictions = {"naive (last value)": naive}

    # ---- train each recurrent model, full batch, Adam, mean squared error ----
    for cell in ("RNN", "LSTM", "GRU"):
        tr.manual_seed(args.seed)
        model = Forecaster(cell, args.hidden)
        optimizer = tr.optim.Adam(model.parameters(), lr=0.01)
        for _ in range(epochs):
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(x_train), y_train)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        with tr.no_grad():
            pred = model(x_test).numpy() * std + mean
        predictions[cell] = pred
        results[cell] = rmse(pred)

    print(f"one-step-ahead RMSE on {years[split]}-{years[-1]} (sunspot number):")
    for name, value in results.items():
        print(f"  {name:>20}: {value:6.2f}")

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed: no plot)")
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        fig, ax = plt.subplots(figsize=(9, 4))
        ax.plot(years, counts, color="k", lw=2, label="observed")
        for name, pred in predictions.items():
            style = ":" if name.startswith("naive") else "-"
            ax.plot(years[split:], pred, style, lw=1.3, label=f"{name}: RMSE {results[name]:.1f}")
        ax.axvline(years[split] - 0.5, color="k", ls=":", lw=1)
        ax.set_xlim(years[split] - 60, years[-1] + 1)
        ax.set_xlabel("year")
        ax.set_ylabel("yearly mean sunspot number")
        ax.set_title("One-step-ahead forecasts on the held-out years")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = args.out / "forecasting.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        print(f"plot: {path}")

    return {"rmse": results, "naive": results["naive (last value)"], "epochs": epochs}


if __name__ == "__main__":
    main()
