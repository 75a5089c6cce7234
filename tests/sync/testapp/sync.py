"""The test app's registration with sync (found by ``SyncConfig.ready()``)."""

import sync
from tests.sync.testapp.models import Note


@sync.register(Note)
class NoteSync(sync.SyncedModel):
    """Notes travel as ``"note"`` changes with the default serialiser.

    Their shape filters by words of the text and a range of stars, so sync's
    own tests cover shapes without the host's models.
    """

    name = "note"
    shape = sync.ShapeSpec(
        filters={
            "q": sync.Words("text"),
            "min_stars": sync.AtLeast("stars"),
            "max_stars": sync.AtMost("stars"),
        }
    )
