"""Access rules for the project's own pages."""

from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def staff_page_required(
    view: Callable[..., HttpResponse],
) -> Callable[..., HttpResponse]:
    """Serve ``view`` to active staff; everyone else gets the site's "staff only" page.

    Django admin's ``staff_member_required`` sends a shopper to the admin's
    own, differently styled login page. This answers 403 with a page of the
    site instead: a visitor who is not logged in gets a link to the login
    (coming back to this page), a logged-in shopper is told the page is for
    staff and may switch accounts.
    """

    @wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        user = request.user
        if user.is_active and user.is_staff:
            return view(request, *args, **kwargs)
        return render(request, "staff_only.html", status=403)

    return wrapped
