"""Conversion values, kept as integer thousandths of the currency unit."""

from __future__ import annotations

from decimal import Decimal


def milli_to_decimal(milli: int) -> str:
    """``5000`` -> ``"5.00"``, ``4999`` -> ``"4.999"``: exact, at least two decimals."""
    amount = Decimal(milli).scaleb(-3)
    places = Decimal("0.01") if milli % 10 == 0 else Decimal("0.001")
    return str(amount.quantize(places))
