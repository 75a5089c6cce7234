"""Shapes: filtered live subscriptions, declared per synced model.

A :class:`~sync.registry.SyncedModel` declares how a shape narrows its rows
with a :class:`ShapeSpec`: which fields of the wire payload (``serialize``'s
output) a client may filter on and how each one matches::

    shape = sync.ShapeSpec(
        filters={
            "category": sync.Exact("category_id", text_field="category"),
            "min_price": sync.AtLeast("price"),
            "max_price": sync.AtMost("price"),
            "q": sync.Words("title", "tags"),
        },
        where={"active": True},
    )

Every shape also accepts ``ids`` (a list of row ids the filters narrow
further) and ``also_ids`` (row ids added to the filters' rows). A row is in a
shape when the payload meets ``where`` and either its id is in ``also_ids``
or it passes every filter the client gave (and is in ``ids``, when set). Matching runs
on payloads only, never on the database, so one change is classified for
thousands of sockets without a query; the change log keeps each change's
*before-image* (the payload fields the spec reads, before the write) so a row
that leaves a shape is told apart from one that was never in it.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal

from django.utils.text import slugify
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    create_model,
)

from sync.wire import BAD_MESSAGE, FrameError

LEAVE = "leave"
UPSERT = "upsert"
#: Most ids one shape may list (in ``ids`` and in ``also_ids`` each).
SHAPE_MAX_IDS = 500
#: Words of a ``Words`` filter beyond this many are ignored.
WORDS_MAX = 8

_WORD = re.compile(r"\w+", re.UNICODE)

Number = StrictInt | Annotated[StrictFloat, Field(allow_inf_nan=False)]
ShortText = Annotated[StrictStr, Field(max_length=200)]


def _words(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        value = " ".join(str(part) for part in value)
    return [word.lower() for word in _WORD.findall(str(value))]


class Filter:
    """One client-settable filter on payload fields."""

    #: The pydantic type of the client's value.
    annotation: Any = Any
    fields: tuple[str, ...] = ()

    def prepare(self, value: Any) -> Any:
        """Return ``value`` in the form :meth:`matches` compares (once per shape)."""
        return value

    def matches(self, payload: Mapping[str, Any], value: Any) -> bool:
        """Return True when ``payload`` passes this filter set to ``value``."""
        raise NotImplementedError


@dataclass(frozen=True)
class Exact(Filter):
    """Equal to ``field``; a text value may instead match ``text_field`` by slug.

    ``Exact("category_id", text_field="category")`` accepts a category id
    (``3`` or ``"3"``) or its slugified name (``"home-garden"``).
    """

    field: str
    text_field: str | None = None
    annotation: ClassVar[Any] = StrictInt | Annotated[StrictStr, Field(max_length=100)]

    @property
    def fields(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.field,) + ((self.text_field,) if self.text_field else ())

    def prepare(self, value: Any) -> Any:
        if isinstance(value, str) and value.strip().isdigit():
            return int(value.strip())
        if isinstance(value, str) and self.text_field:
            return slugify(value)
        return value

    def matches(self, payload: Mapping[str, Any], value: Any) -> bool:
        if isinstance(value, str) and self.text_field:
            text = payload.get(self.text_field)
            return text is not None and slugify(str(text)) == value
        return payload.get(self.field) == value


@dataclass(frozen=True)
class AtLeast(Filter):
    """``payload[field] >= value`` (a missing field never matches)."""

    field: str
    annotation: ClassVar[Any] = Number

    @property
    def fields(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.field,)

    def matches(self, payload: Mapping[str, Any], value: Any) -> bool:
        got = payload.get(self.field)
        return got is not None and float(got) >= value


@dataclass(frozen=True)
class AtMost(Filter):
    """``payload[field] <= value`` (a missing field never matches)."""

    field: str
    annotation: ClassVar[Any] = Number

    @property
    def fields(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.field,)

    def matches(self, payload: Mapping[str, Any], value: Any) -> bool:
        got = payload.get(self.field)
        return got is not None and float(got) <= value


class Words(Filter):
    """Every word of the value starts some word of one of ``fields``.

    Words are runs of letters and digits, compared lower-cased: ``"headph
    wire"`` matches the title "Wireless Headphones". Lists (tags) count as
    their words. This is the word-prefix rule of a PostgreSQL ``simple``
    full-text search with ``word:*`` terms.
    """

    annotation: Any = ShortText

    def __init__(self, *fields: str) -> None:
        self.fields = tuple(fields)

    def prepare(self, value: Any) -> Any:
        return tuple(_words(value)[:WORDS_MAX])

    def matches(self, payload: Mapping[str, Any], value: Any) -> bool:
        have = [w for name in self.fields for w in _words(payload.get(name))]
        return all(any(w.startswith(word) for w in have) for word in value)


@dataclass(frozen=True)
class ShapeSpec:
    """How clients may narrow one synced model's rows.

    ``filters`` maps each wire key of a shape to its :class:`Filter`;
    ``where`` is what every row of every shape meets (e.g. ``{"active":
    True}``: inactive rows are in no shape, so deactivating one is a leave).
    """

    filters: Mapping[str, Filter]
    where: Mapping[str, Any] = field(default_factory=dict)

    def image_fields(self) -> tuple[str, ...]:
        """Return the payload fields a before-image keeps (sorted, unique)."""
        names = set(self.where)
        for spec in self.filters.values():
            names.update(spec.fields)
        return tuple(sorted(names))

    def image(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Return the before-image of ``payload``: the fields shapes read."""
        return {name: payload.get(name) for name in self.image_fields()}

    def request_model(self, model_name: str) -> type[BaseModel]:
        """Return the pydantic model of a client's shape of this model."""
        id_list = list[StrictInt | Annotated[StrictStr, Field(max_length=64)]] | None
        fields: dict[str, Any] = {
            "model": (Literal[model_name], ...),  # type: ignore[valid-type]
            "ids": (id_list, Field(default=None, max_length=SHAPE_MAX_IDS)),
            "also_ids": (id_list, Field(default=None, max_length=SHAPE_MAX_IDS)),
        }
        for key, spec in self.filters.items():
            fields[key] = (spec.annotation | None, None)
        return create_model(
            f"{model_name.title()}ShapeRequest",
            __config__=ConfigDict(extra="forbid", strict=True),
            **fields,
        )


@dataclass(frozen=True)
class Shape:
    """One client's compiled shape: a model, its set filters and its extra ids.

    ``key`` identifies equal shapes, so a change is classified once per
    distinct shape however many sockets share it. ``base_key`` leaves out
    ``also_ids``: for a row not listed there, every shape with the same
    filters gives the same verdict (see :meth:`key_for`), so sockets whose
    extra ids differ (each visitor's panels) still share one verdict.
    """

    model: str
    spec: ShapeSpec
    values: tuple[tuple[str, Any], ...]
    ids: frozenset[Any] | None
    key: tuple[Any, ...]
    also_ids: frozenset[Any] | None = None
    base_key: tuple[Any, ...] = ()

    def key_for(self, object_id: Any) -> tuple[Any, ...]:
        """Return the key under which a change of row ``object_id`` is classified."""
        if self.also_ids is not None and object_id in self.also_ids:
            return self.key
        return self.base_key

    def contains(self, object_id: Any, payload: Mapping[str, Any] | None) -> bool:
        """Return True when the row ``object_id`` with ``payload`` is in the shape."""
        if payload is None:
            return False
        for name, wanted in self.spec.where.items():
            if payload.get(name) != wanted:
                return False
        if self.also_ids is not None and object_id in self.also_ids:
            return True
        if self.ids is not None and object_id not in self.ids:
            return False
        filters = self.spec.filters
        return all(filters[key].matches(payload, value) for key, value in self.values)

    def classify(
        self,
        *,
        model: str,
        op: str,
        object_id: Any,
        data: Mapping[str, Any] | None,
        before: Any,
    ) -> str | None:
        """Return how a change reaches this shape: ``"upsert"``, ``"leave"`` or None.

        ``before`` is the change's before-image: a dict, ``False`` when the
        row did not exist, or None when the writer did not record it (the row
        may have been in the shape, so leaving it is sent; a ``leave`` of a row
        a client does not hold changes nothing).
        """
        if model != self.model:
            return None
        if op == UPSERT and self.contains(object_id, data):
            return UPSERT
        if before is False:
            return None
        if before is None or self.contains(object_id, before):
            return LEAVE
        return None


def shape_compile(
    raw: Mapping[str, Any], *, spec_of: Callable[[str], ShapeSpec | None]
) -> Shape:
    """Return the :class:`Shape` a client asked for, validated.

    ``spec_of`` returns the :class:`ShapeSpec` of a model's wire name (None
    when the model is unknown or declares none).

    Raises
    ------
    FrameError
        ``bad_message``: unknown model, unknown key or a value of a wrong type.
    """
    model = raw.get("model")
    spec = spec_of(model) if isinstance(model, str) else None
    if spec is None:
        raise FrameError(BAD_MESSAGE, f"no shapes of model {model!r}")
    try:
        parsed = spec.request_model(model).model_validate(dict(raw))
    except ValidationError as exc:
        raise FrameError(BAD_MESSAGE, f"bad shape: {exc.errors()[0]['msg']}") from None
    values = []
    for key in spec.filters:
        value = getattr(parsed, key)
        if value is None or value == "":
            continue
        values.append((key, spec.filters[key].prepare(value)))
    ids = _id_set(parsed.ids)
    also_ids = _id_set(parsed.also_ids)
    values_t = tuple(values)
    base_key = (model, values_t, _id_key(ids))
    return Shape(
        model=model,
        spec=spec,
        values=values_t,
        ids=ids,
        key=(*base_key, _id_key(also_ids)),
        also_ids=also_ids,
        base_key=base_key,
    )


def _id_set(raw: list[Any] | None) -> frozenset[Any] | None:
    # Wire ids of digit-only primary keys are integers (sync.services._wire_id).
    if raw is None:
        return None
    return frozenset(int(i) if str(i).isdigit() else i for i in raw)


def _id_key(ids: frozenset[Any] | None) -> tuple[str, ...] | None:
    return tuple(sorted(map(str, ids))) if ids is not None else None
