"""OpenAPI description of the JSON:API documents (drf-spectacular), generated from each resource's serializer."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view, inline_serializer
from rest_framework import serializers


class JWTAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.JWTAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


SEARCH_BODY = inline_serializer(
    name="SearchRequest",
    fields={
        "filter": serializers.CharField(
            required=False,
            help_text="JSON string: a list of {name, op, val} expressions or {and|or: [...]} nodes, AND-ed.",
        ),
        "sort": serializers.CharField(required=False, help_text="Attribute name, '-' prefix for descending."),
        "limit": serializers.IntegerField(
            required=False, help_text="Total cap across pages; 0 returns only meta.count."
        ),
        "text": serializers.CharField(required=False),
        "include": serializers.CharField(required=False),
        "intersects": serializers.CharField(required=False, help_text="JSON string of a GeoJSON geometry."),
        "intersects_none": serializers.BooleanField(required=False),
    },
)
CONTINUATION = OpenApiParameter("continuation", str, description="Opaque position token from links.next.")
INCLUDE = OpenApiParameter("include", str, description="Related resources to include, e.g. 'product'.")


def _resource(name: str, type_name: str, attributes):
    return inline_serializer(
        name=f"{name}Resource",
        fields={
            "type": serializers.CharField(help_text=f"Always {type_name!r}."),
            "id": serializers.CharField(),
            "attributes": attributes,
        },
    )


def document_schema(viewset_class) -> None:
    """Attach request/response schemas of JSON:API documents to a CatalogViewSet subclass."""
    name = viewset_class.type_name.title().replace("_", "")
    attributes = viewset_class.serializer_class
    resource = _resource(name, viewset_class.type_name, attributes())
    single = inline_serializer(name=f"{name}Document", fields={"data": resource})
    many = inline_serializer(
        name=f"{name}Collection",
        fields={
            "data": _resource(f"{name}List", viewset_class.type_name, attributes()).__class__(many=True),
            "meta": serializers.DictField(required=False),
            "links": serializers.DictField(),
        },
    )
    request_document = inline_serializer(
        name=f"{name}Request",
        fields={"data": _resource(f"{name}Request", viewset_class.type_name, attributes(partial=True))},
    )
    base_search = viewset_class.search

    def search(self, request):
        return base_search(self, request)

    # PUT-on-collection is not one of DRF's standard actions, so it gets its own schema-carrying method.
    viewset_class.search = extend_schema(
        request=SEARCH_BODY,
        responses=many,
        parameters=[CONTINUATION],
        description="Search with the Catalog v2 filter language (PUT on the collection).",
    )(search)
    extend_schema_view(
        list=extend_schema(responses=many, parameters=[CONTINUATION, INCLUDE]),
        create=extend_schema(request=request_document, responses={201: single}, parameters=[INCLUDE]),
        retrieve=extend_schema(responses=single, parameters=[INCLUDE]),
        partial_update=extend_schema(request=request_document, responses=single, parameters=[INCLUDE]),
        destroy=extend_schema(responses={204: None}),
    )(viewset_class)


def untyped(viewset_class):
    """Views whose bodies are small fixed documents: describe them as plain JSON objects."""
    return extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)(viewset_class)
