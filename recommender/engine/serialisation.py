"""Store a fitted behaviour model as an ``.npz`` archive (arrays only, no pickle).

The archive is what ``recompute_recommendations`` writes to the database and
every server process reads back; ``allow_pickle=False`` on reading means a
stored model can never run code. A format version guards the layout.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["FORMAT_VERSION", "behaviour_pack", "behaviour_unpack"]

#: Layout of the archive; bump it when the arrays change.
FORMAT_VERSION = 1


def behaviour_pack(fields: dict[str, Any]) -> bytes:
    """Return the fields of a ``Behaviour`` as ``.npz`` bytes.

    Parameters
    ----------
    fields : dict
        ``item_ids`` (n,) int64, ``neighbours`` (n, n) CSR float32,
        ``counts`` (n,) float32, ``pop_item``/``pop_bucket`` (cells,) int32,
        ``pop_count`` (cells,) float32 and the scalars ``bucket_origin``,
        ``bucket_secs``, ``fitted_at`` (epoch seconds), ``n_events`` and
        ``method``.

    Returns
    -------
    bytes
    """
    buf = io.BytesIO()
    nb = fields["neighbours"]
    np.savez(
        buf,
        format_version=np.int64(FORMAT_VERSION),
        item_ids=fields["item_ids"],
        nb_indptr=nb.indptr.astype(np.int64),
        nb_indices=nb.indices.astype(np.int32),
        nb_data=nb.data.astype(np.float32),
        counts=fields["counts"],
        pop_item=fields["pop_item"],
        pop_bucket=fields["pop_bucket"],
        pop_count=fields["pop_count"],
        scalars=np.array(
            [
                fields["bucket_origin"],
                fields["bucket_secs"],
                fields["fitted_at"],
                fields["n_events"],
            ],
            dtype=np.float64,
        ),
        method=np.array(fields["method"]),
    )
    return buf.getvalue()


def behaviour_unpack(data: bytes) -> dict[str, Any]:
    """Return the fields stored by :func:`behaviour_pack`, as keyword arguments.

    Raises
    ------
    ValueError
        The archive has another format version.
    """
    with np.load(io.BytesIO(bytes(data)), allow_pickle=False) as z:
        version = int(z["format_version"])
        if version != FORMAT_VERSION:
            raise ValueError(f"unsupported Behaviour format {version}")
        n = z["item_ids"].shape[0]
        scalars = z["scalars"]
        return {
            "item_ids": z["item_ids"].astype(np.int64),
            "neighbours": sp.csr_matrix(
                (z["nb_data"], z["nb_indices"], z["nb_indptr"]),
                shape=(n, n),
                dtype=np.float32,
            ),
            "counts": z["counts"].astype(np.float32),
            "pop_item": z["pop_item"].astype(np.int32),
            "pop_bucket": z["pop_bucket"].astype(np.int32),
            "pop_count": z["pop_count"].astype(np.float32),
            "bucket_origin": float(scalars[0]),
            "bucket_secs": float(scalars[1]),
            "fitted_at": float(scalars[2]),
            "method": str(z["method"]),
            "n_events": int(scalars[3]),
        }
