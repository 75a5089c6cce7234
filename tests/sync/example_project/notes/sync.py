"""Register Note with sync: every save and delete reaches /ws/sync/."""

import sync
from notes.models import Note


@sync.register(Note)
class NoteSync(sync.SyncedModel):
    name = "note"

    def serialize(self, obj: Note) -> dict:
        return {"id": obj.pk, "text": obj.text}
