"""The API's OpenAPI 3.1 description, served at `/openapi.json`."""

from __future__ import annotations

from typing import Any

API_VERSION = "1"


def _error() -> dict[str, Any]:
    return {"description": "an error", "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"}}}}


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{schema}"}}}}


SESSION_ID = {"name": "session_id", "in": "path", "required": True,
              "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"}}


def openapi(bot_name: str) -> dict[str, Any]:
    """The description of the API serving the bot `bot_name`."""
    secured: list[dict[str, list[str]]] = [{"bearer": []}]
    codes = ("400", "401", "403", "404", "408", "413", "415", "422", "503")
    errors = {code: _error() for code in codes}
    return {
        "openapi": "3.1.0",
        "info": {"title": f"chatbot: {bot_name}", "version": API_VERSION,
                 "description": "A chatbot's sessions over HTTP. See docs/http.md."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {
                    "error": {"type": "object", "required": ["status", "message"],
                              "properties": {"status": {"type": "integer"},
                                             "message": {"type": "string"}}}}},
                "NewSession": {"type": "object", "additionalProperties": False,
                               "properties": {"id": SESSION_ID["schema"]}},
                "Created": {"type": "object", "required": ["id", "created"], "properties": {
                    "id": {"type": "string"}, "created": {"type": "boolean"}}},
                "Message": {"type": "object", "required": ["text"],
                            "additionalProperties": False, "properties": {
                                "text": {"type": "string",
                                         "description": "cut to 1,000 characters"},
                                "trace": {"type": "boolean", "default": False},
                                "turn": {"type": "integer", "minimum": 0, "description":
                                         "the session's turn number this message is "
                                         "(0 for the first): a retry of an answered turn "
                                         "gets the stored answer, a client behind gets 409"}}},
                "Reply": {"type": "object",
                          "required": ["text", "source", "intent", "confidence", "session"],
                          "properties": {
                              "text": {"type": "string"},
                              "source": {"enum": ["intent", "neural", "fallback", "form"]},
                              "intent": {"type": ["string", "null"]},
                              "confidence": {"type": ["number", "null"]},
                              "session": {"type": "string"},
                              "trace": {"type": "object", "description":
                                        "with trace: true; `explain` is /why's text"},
                              "turn": {"type": "integer"},
                              "replayed": {"type": "boolean"}}},
                "Session": {"type": "object", "required": ["version", "id", "events", "state"],
                            "description": "session.to_dict()", "properties": {
                                "version": {"type": "integer"}, "id": {"type": "string"},
                                "events": {"type": "array", "items": {"type": "object"}},
                                "state": {"type": ["string", "null"]},
                                "bot": {"type": "object"}}},
                "Reset": {"type": "object", "properties": {
                    "id": {"type": "string"}, "reset": {"type": "boolean"}}},
            },
        },
        "paths": {
            "/v1/sessions": {"post": {
                "summary": "Create a session (a fresh id, or the id given)",
                "security": secured,
                "requestBody": {"required": False, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/NewSession"}}}},
                "responses": {"201": _json("Created", "created"),
                              "200": _json("Created", "the id exists already"), **errors}}},
            "/v1/sessions/{session_id}": {
                "parameters": [SESSION_ID],
                "get": {"summary": "The session: events and neural state", "security": secured,
                        "responses": {"200": _json("Session", "the session"), **errors}},
                "delete": {"summary": "Start the session over (the id stays)",
                           "security": secured,
                           "responses": {"200": _json("Reset", "reset"), **errors}}},
            "/v1/sessions/{session_id}/messages": {
                "parameters": [SESSION_ID],
                "post": {"summary": "Send a message; get the bot's reply", "security": secured,
                         "requestBody": {"required": True, "content": {"application/json": {
                             "schema": {"$ref": "#/components/schemas/Message"}}}},
                         "responses": {"200": _json("Reply", "the reply"),
                                       "409": _error(), **errors}}},
            "/healthz": {"get": {"summary": "Liveness (no token needed)", "responses": {
                "200": {"description": "ok"},
                "503": {"description": "the batcher has stopped or the store does not answer"}}}},
            "/metrics": {"get": {"summary": "Prometheus text format", "security": secured,
                                 "responses": {"200": {"description": "metrics"}}}},
            "/openapi.json": {"get": {"summary": "This description", "security": secured,
                                      "responses": {"200": {"description": "OpenAPI 3.1"}}}},
            "/": {"get": {"summary": "The web chat page (static; no token needed)",
                          "responses": {"200": {"description": "HTML"}}}},
        },
    }
