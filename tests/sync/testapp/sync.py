"""The test app's registration with sync (found by ``SyncConfig.ready()``)."""

import sync
from tests.sync.testapp.models import Note


@sync.register(Note)
class NoteSync(sync.SyncedModel):
    """Notes travel as ``"note"`` changes with the default serialiser."""

    name = "note"
