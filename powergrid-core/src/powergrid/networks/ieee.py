"""IEEE distribution test feeders as balanced positive-sequence equivalents (placeholder, being written)."""

from __future__ import annotations

import pandapower.networks as pn


def ieee13():
    raise NotImplementedError


def ieee34():
    raise NotImplementedError


def ieee123():
    raise NotImplementedError


def ieee34_3mg():
    raise NotImplementedError
