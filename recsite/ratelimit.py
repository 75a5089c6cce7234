"""Moved to :mod:`recommender.limits` (re-exported while callers follow)."""

from recommender.limits import TokenBucket, take_all

__all__ = ["TokenBucket", "take_all"]
