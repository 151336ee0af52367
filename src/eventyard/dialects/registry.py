"""The built-in dialects. Adding a dialect is one package and one line here."""

from __future__ import annotations

from eventyard.dialects.base import Dialect
from eventyard.dialects.clevertap import DIALECT as CLEVERTAP
from eventyard.dialects.cordial import DIALECT as CORDIAL
from eventyard.dialects.netcore import DIALECT as NETCORE
from eventyard.dialects.ortto import DIALECT as ORTTO
from eventyard.dialects.segment import DIALECT as SEGMENT

BUILTIN_DIALECTS: tuple[Dialect, ...] = (NETCORE, CLEVERTAP, ORTTO, CORDIAL, SEGMENT)
