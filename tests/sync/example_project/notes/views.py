"""A tiny JSON API: the snapshot with its seq, and writes."""

import json

from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt

import sync
from notes.models import Note
from sync.registry import synced


@csrf_exempt
def notes(request: HttpRequest) -> JsonResponse:
    """GET: every note and the seq it reflects. POST ``{"text"}``: add a note."""
    if request.method == "POST":
        note = Note.objects.create(text=json.loads(request.body)["text"])
        return JsonResponse({"id": note.pk}, status=201)
    entry = synced(Note)
    seq, items = sync.snapshot_at_seq(
        lambda: [entry.serialize(n) for n in entry.get_queryset().order_by("id")]
    )
    return JsonResponse({"seq": seq, "items": items})


@csrf_exempt
def note(request: HttpRequest, pk: int) -> JsonResponse:
    """PUT ``{"text"}``: change a note. DELETE: remove it."""
    obj = get_object_or_404(Note, pk=pk)
    if request.method == "DELETE":
        obj.delete()
    else:
        obj.text = json.loads(request.body)["text"]
        obj.save()
    return JsonResponse({"id": pk})
