"""recfw's OpenAPI 3.1 document, served at ``GET /v1/openapi.json``.

Written for recfw (field names and types follow Whereby's REST API, which is the
compatibility contract; recfw's own additions are marked as such). Checked with
``openapi-spec-validator`` and exercised with schemathesis in the tests.
"""

from __future__ import annotations

import copy
from typing import Any

from ..control.pagination import MAX_LIMIT
from ..control.recordings import SORT_CHOICES
from ..server.meetings import MAX_PREFIX, MEETING_FIELDS, ROOM_MODES, ROOM_NAME_PATTERNS
from .recordings import LINK_DEFAULT, LINK_MAX, LINK_MIN, MAX_BULK

_STR = {"type": "string"}
_NULLABLE_STR = {"type": ["string", "null"]}
_DATE = {"type": "string", "format": "date-time"}


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_DESTINATION = {
    "type": ["object", "null"],
    "description": "Where the recording is stored; null (or a missing field) inherits the "
    "organization default. Secrets are write-only: answers show them masked.",
    "properties": {
        "provider": {
            "type": "string",
            "description": "A storage plugin's name: s3, local, fsspec, ... "
            '"whereby" (Whereby-hosted storage) means the organization\'s own destination.',
        },
        "authenticationType": {"type": "string", "enum": ["accessKey", "roleBased"]},
        "bucket": {"type": "string", "description": "bucket or bucket/sub/folder"},
        "accessKeyId": _STR,
        "accessKeySecret": _STR,
        "fileFormat": {"type": "string", "description": "mkv, mp4 (or a plugin's format)"},
        "oidcRoleArn": {
            "type": "string",
            "description": "The IAM role to assume when authenticationType is roleBased.",
        },
        "region": {"type": "string", "description": "recfw: the S3 region"},
        "endpointUrl": {"type": "string", "description": "recfw: an S3-compatible endpoint"},
    },
    "additionalProperties": False,
}

_RECORDING_SETTINGS = {
    "type": ["object", "null"],
    "description": "Overrides the organization's recording defaults for this meeting only.",
    "properties": {
        "type": {"type": ["string", "null"], "enum": ["none", "local", "cloud", None]},
        "destination": _DESTINATION,
        "startTrigger": {
            "type": ["string", "null"],
            "description": "none, prompt, automatic, automatic-2nd-participant (or a "
            "plugin's trigger); null inherits.",
        },
        "maxDuration": {
            "type": ["number", "null"],
            "exclusiveMinimum": 0,
            "description": "recfw: the longest a recording may run, in seconds.",
        },
    },
    "additionalProperties": False,
}

_FIELDS = {
    "type": "array",
    "items": {"type": "string", "enum": list(MEETING_FIELDS)},
    "description": "Extra fields of the answer: hostRoomUrl (viewerRoomUrl is accepted; "
    "recfw has no viewer role yet and leaves it out).",
}

_MEETING_REQUEST = {
    "type": "object",
    "required": ["endDate"],
    "properties": {
        "endDate": {
            **_DATE,
            "description": "When the meeting ends (UTC unless an offset is given). The room "
            "closes then; the meeting is deleted an hour later.",
        },
        "startDate": {**_DATE, "deprecated": True, "description": "Ignored (as by Whereby)."},
        "isLocked": {"type": "boolean", "description": "Stored; not acted on yet."},
        "roomMode": {"type": "string", "enum": list(ROOM_MODES), "default": "normal"},
        "roomNamePrefix": {
            "type": "string",
            "maxLength": MAX_PREFIX,
            "pattern": f"^([a-z0-9][a-z0-9_-]{{0,{MAX_PREFIX - 1}}})?$",
            "description": "Lower-cased, whitespace removed; the room name is the prefix "
            "followed by the random part.",
        },
        "roomNamePattern": {
            "type": "string",
            "enum": list(ROOM_NAME_PATTERNS),
            "default": "uuid",
        },
        "templateType": {
            "type": "string",
            "enum": ["viewerMode"],
            "description": "viewerMode: a locked group room.",
        },
        "recording": _RECORDING_SETTINGS,
        "liveTranscription": {
            "type": ["object", "null"],
            "description": "Stored (encrypted); not acted on yet.",
        },
        "streaming": {
            "type": ["object", "null"],
            "description": "Stored (encrypted); not acted on yet.",
        },
        "fields": _FIELDS,
    },
    "additionalProperties": False,
}

_MEETING = {
    "type": "object",
    "required": ["meetingId", "roomName", "roomUrl", "startDate", "endDate"],
    "properties": {
        "meetingId": _STR,
        "roomName": {"type": "string", "description": "/<room name>"},
        "roomUrl": {"type": "string", "format": "uri"},
        "startDate": _DATE,
        "endDate": _DATE,
        "hostRoomUrl": {
            "type": "string",
            "format": "uri",
            "description": "Only when asked for through fields.",
        },
        "roomMode": {"type": "string", "enum": list(ROOM_MODES)},
        "isLocked": {"type": "boolean"},
        "recording": {"type": "object", "description": "recfw: the effective settings."},
    },
}

_RECORDING = {
    "type": "object",
    "required": [
        "recordingId",
        "roomSessionId",
        "filename",
        "startDate",
        "endDate",
        "sizeInMegaBytes",
    ],
    "properties": {
        "recordingId": _STR,
        "roomSessionId": _NULLABLE_STR,
        "filename": _STR,
        "startDate": _DATE,
        "endDate": {"type": ["string", "null"], "format": "date-time"},
        "sizeInMegaBytes": {"type": ["number", "null"], "description": "10^6 bytes"},
        "roomName": _STR,
        "meetingId": _NULLABLE_STR,
        "status": {
            "type": "string",
            "enum": ["recording", "uploading", "stored", "failed", "kept"],
        },
        "fileFormat": _NULLABLE_STR,
        "durationInSeconds": {"type": ["number", "null"]},
        "sizeInBytes": {"type": ["integer", "null"]},
        "location": _NULLABLE_STR,
        "reason": _NULLABLE_STR,
    },
}

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": _STR,
        "fields": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": _STR, "message": _STR},
            },
        },
    },
}


def _page(item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["results", "cursor"],
        "properties": {
            "results": {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}},
            "cursor": {
                "type": ["string", "null"],
                "description": "Pass it back to get the next page; null on the last one.",
            },
        },
    }


_COMMON = {
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "429": {"$ref": "#/components/responses/TooManyRequests"},
}
_BAD = {"400": {"$ref": "#/components/responses/Invalid"}}
_NOT_FOUND = {"404": _error_response("No such meeting or recording.")}
_CONFLICT = {"409": _error_response("The recording is not in storage (yet).")}
_FORBIDDEN = {"403": _error_response("The recording's storage cannot do this.")}
_STORAGE = {"502": _error_response("The customer's storage failed.")}

_CURSOR = {"name": "cursor", "in": "query", "schema": _STR}
_LIMIT = {
    "name": "limit",
    "in": "query",
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50},
}
_FIELDS_QUERY = {
    "name": "fields",
    "in": "query",
    "style": "form",
    "explode": False,
    "schema": _FIELDS,
}
_MEETING_ID = {"name": "meetingId", "in": "path", "required": True, "schema": _STR}
_RECORDING_ID = {"name": "recordingId", "in": "path", "required": True, "schema": _STR}

_PATHS: dict[str, Any] = {
    "/meetings": {
        "post": {
            "summary": "Create a meeting",
            "operationId": "createMeeting",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _MEETING_REQUEST}},
            },
            "responses": {
                "201": _json({"$ref": "#/components/schemas/Meeting"}, "The meeting."),
                **_BAD,
                **_COMMON,
            },
        },
        "get": {
            "summary": "List meetings (oldest first)",
            "operationId": "listMeetings",
            "parameters": [_CURSOR, _LIMIT, _FIELDS_QUERY],
            "responses": {
                "200": _json(_page("Meeting"), "A page of meetings."),
                **_BAD,
                **_COMMON,
            },
        },
    },
    "/meetings/{meetingId}": {
        "get": {
            "summary": "Get a meeting",
            "operationId": "getMeeting",
            "parameters": [_MEETING_ID, _FIELDS_QUERY],
            "responses": {
                "200": _json({"$ref": "#/components/schemas/Meeting"}, "The meeting."),
                **_BAD,
                **_NOT_FOUND,
                **_COMMON,
            },
        },
        "delete": {
            "summary": "Delete a meeting (idempotent; stops and stores its recording first)",
            "operationId": "deleteMeeting",
            "parameters": [_MEETING_ID],
            "responses": {"204": {"description": "Deleted (or already gone)."}, **_COMMON},
        },
    },
    "/recordings": {
        "get": {
            "summary": "List recordings (newest first unless sortBy says otherwise)",
            "operationId": "listRecordings",
            "parameters": [
                {"name": "roomName", "in": "query", "schema": _STR},
                _CURSOR,
                _LIMIT,
                {
                    "name": "sortBy",
                    "in": "query",
                    "schema": {"type": "string", "enum": list(SORT_CHOICES)},
                },
            ],
            "responses": {
                "200": _json(_page("Recording"), "A page of recordings."),
                **_BAD,
                **_COMMON,
            },
        }
    },
    "/recordings/bulk-delete": {
        "post": {
            "summary": "Delete several recordings (in the background; idempotent)",
            "operationId": "bulkDeleteRecordings",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["recordingIds"],
                            "properties": {
                                "recordingIds": {
                                    "type": "array",
                                    "maxItems": MAX_BULK,
                                    "items": _STR,
                                }
                            },
                            "additionalProperties": False,
                        }
                    }
                },
            },
            "responses": {"204": {"description": "Scheduled."}, **_BAD, **_COMMON},
        }
    },
    "/recordings/{recordingId}": {
        "get": {
            "summary": "Get a recording",
            "operationId": "getRecording",
            "parameters": [_RECORDING_ID],
            "responses": {
                "200": _json({"$ref": "#/components/schemas/Recording"}, "The recording."),
                **_NOT_FOUND,
                **_COMMON,
            },
        },
        "delete": {
            "summary": "Delete a recording from the customer's storage (idempotent)",
            "operationId": "deleteRecording",
            "parameters": [_RECORDING_ID],
            "responses": {
                "204": {"description": "Deleted (or already gone)."},
                **_FORBIDDEN,
                **_CONFLICT,
                **_STORAGE,
                **_COMMON,
            },
        },
    },
    "/recordings/{recordingId}/access-link": {
        "get": {
            "summary": "A time-limited link to download a stored recording",
            "operationId": "getRecordingAccessLink",
            "parameters": [
                _RECORDING_ID,
                {
                    "name": "validForSeconds",
                    "in": "query",
                    "schema": {
                        "type": "integer",
                        "minimum": LINK_MIN,
                        "maximum": LINK_MAX,
                        "default": LINK_DEFAULT,
                    },
                },
            ],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["accessLink", "expires"],
                        "properties": {
                            "accessLink": {"type": "string", "format": "uri"},
                            "expires": {
                                "type": "integer",
                                "description": "When the link expires, in ms since the epoch.",
                            },
                        },
                    },
                    "The link.",
                ),
                **_BAD,
                **_FORBIDDEN,
                **_NOT_FOUND,
                **_CONFLICT,
                **_STORAGE,
                **_COMMON,
            },
        }
    },
}

_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "recfw REST API",
        "version": "1.0",
        "description": "Meetings and recordings, compatible with Whereby's REST API. "
        "Every path needs 'Authorization: Bearer <key>' (recfw keys create). See docs/api.md.",
    },
    "servers": [{"url": "/v1"}],
    "security": [{"BearerAuth": []}],
    "paths": _PATHS,
    "components": {
        "securitySchemes": {"BearerAuth": {"type": "http", "scheme": "bearer"}},
        "schemas": {"Meeting": _MEETING, "Recording": _RECORDING, "Error": _ERROR},
        "responses": {
            "Invalid": _error_response("Invalid request: every wrong field is named."),
            "Unauthorized": _error_response("The API key is missing or wrong."),
            "TooManyRequests": {
                **_error_response("The key used up its request budget."),
                "headers": {
                    "Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}
                },
            },
        },
    },
}


def document() -> dict[str, Any]:
    """A copy of the OpenAPI 3.1 document."""
    return copy.deepcopy(_DOCUMENT)


__all__ = ["document"]
