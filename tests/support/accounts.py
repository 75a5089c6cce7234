"""Accounts on a live server: logging in through the forms a person uses."""

from typing import Any

import httpx


def login(base_url: str, username: str, password: str) -> str:
    """Log in through Django's login form on a live server; return the session id."""
    with httpx.Client(base_url=base_url, follow_redirects=False, timeout=10) as client:
        client.get("/accounts/login/")
        response = client.post(
            "/accounts/login/",
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": client.cookies["csrftoken"],
            },
            headers={"Referer": f"{base_url}/accounts/login/"},
        )
        assert response.status_code == 302, response.text[:500]
        return client.cookies["sessionid"]


def session_cookie(user: Any) -> str:
    """Return a valid ``sessionid`` for ``user`` (a logged-in session in the DB)."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


class AdminSession:
    """A staff user editing items through one server's Django admin, as a person does."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.client = httpx.Client(
            base_url=base_url, follow_redirects=False, timeout=10
        )
        self.client.get("/admin/login/")
        response = self.client.post(
            "/admin/login/?next=/admin/",
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": self.client.cookies["csrftoken"],
                "next": "/admin/",
            },
        )
        assert response.status_code == 302, response.text[:500]

    def _post(self, path: str, data: dict[str, Any]) -> httpx.Response:
        data = {**data, "csrfmiddlewaretoken": self.client.cookies["csrftoken"]}
        response = self.client.post(path, data=data)
        assert response.status_code == 302, (
            path,
            response.status_code,
            response.text[:800],
        )
        return response

    @staticmethod
    def _form(fields: dict[str, Any]) -> dict[str, Any]:
        form = {
            "title": fields["title"],
            "description": fields.get("description", ""),
            "category": fields.get("category_id") or "",
            "tags": fields.get("tags", ""),
            "price": fields.get("price", "1.00"),
            "rating": fields.get("rating", "3.0"),
            "year": fields.get("year") or "",
            "external_id": fields.get("external_id", ""),
        }
        if fields.get("active", True):
            form["active"] = "on"
        return form

    def add_item(self, **fields: Any) -> int:
        """Create an item with the add form; return its id."""
        response = self._post(
            "/admin/recommender/item/add/", {**self._form(fields), "_continue": "1"}
        )
        # "Save and continue editing" redirects to /admin/recommender/item/<id>/change/
        return int(response.headers["location"].rstrip("/").split("/")[-2])

    def change_item(self, item_id: int, **fields: Any) -> None:
        self._post(f"/admin/recommender/item/{item_id}/change/", self._form(fields))

    def action(self, name: str, item_ids: list[int]) -> None:
        self._post(
            "/admin/recommender/item/",
            {
                "action": name,
                "select_across": "0",
                "index": "0",
                "_selected_action": [str(i) for i in item_ids],
            },
        )

    def delete_item(self, item_id: int) -> None:
        self._post(f"/admin/recommender/item/{item_id}/delete/", {"post": "yes"})

    def close(self) -> None:
        self.client.close()
