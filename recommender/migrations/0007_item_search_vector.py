"""Full-text search on a stored tsvector column (PostgreSQL only).

An expression index alone is used only when the planner reads the matches
through it; for a common word it walks the id index instead and computes
``to_tsvector`` for every row it passes (180 ms for one page of
"headphones" at a million items). A stored column makes that filter cheap
either way. Django does not know the column: PostgreSQL fills it on every
insert and update, and the catalog selectors name it in SQL
(``SEARCH_VECTOR_SQL`` in recommender/selectors/items.py).
"""

from django.db import migrations

_FORWARD = [
    "DROP INDEX IF EXISTS item_search_gin",
    "ALTER TABLE recommender_item ADD COLUMN IF NOT EXISTS search_vector tsvector "
    "GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, title || ' ' || tags)) "
    "STORED",
    "CREATE INDEX IF NOT EXISTS item_search_gin ON recommender_item "
    "USING gin (search_vector)",
]
_BACKWARD = [
    "DROP INDEX IF EXISTS item_search_gin",
    "ALTER TABLE recommender_item DROP COLUMN IF EXISTS search_vector",
    "CREATE INDEX IF NOT EXISTS item_search_gin ON recommender_item USING gin "
    "((to_tsvector('simple'::regconfig, title || ' ' || tags)))",
]


def _run(statements: list[str]):
    def run(apps, schema_editor) -> None:
        # Full-text search is PostgreSQL's; SQLite falls back to LIKE scans.
        if schema_editor.connection.vendor == "postgresql":
            for sql in statements:
                schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("recommender", "0006_event_created_index"),
    ]

    operations = [migrations.RunPython(_run(_FORWARD), _run(_BACKWARD))]
