"""Schemas shared by several API routers."""

from ninja import Schema


class ErrorOut(Schema):
    code: str
    message: str
