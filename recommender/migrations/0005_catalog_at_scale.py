"""Indexes for a catalog of a million items: keyset pages and full-text search."""

from django.db import migrations, models

# Replaced by a stored column in 0007. An expression index must match the
# query character for character, or PostgreSQL will not use it.
_SEARCH_INDEX = (
    "CREATE INDEX IF NOT EXISTS item_search_gin ON recommender_item USING gin "
    "((to_tsvector('simple'::regconfig, title || ' ' || tags)))"
)


def _search_index_create(apps, schema_editor) -> None:
    # Full-text search is PostgreSQL's; SQLite falls back to LIKE scans.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_SEARCH_INDEX)


def _search_index_drop(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS item_search_gin")


class Migration(migrations.Migration):
    dependencies = [
        ("recommender", "0004_merchandising"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="item",
            index=models.Index(fields=["category", "id"], name="item_category_id"),
        ),
        migrations.AddIndex(
            model_name="item",
            index=models.Index(fields=["price", "id"], name="item_price_id"),
        ),
        migrations.RunPython(_search_index_create, _search_index_drop),
    ]
