"""Whereby's REST API shapes, as JSON Schemas written for these tests from Whereby's
published OpenAPI document (field names and types are the compatibility contract).

Request schemas check that a test's request is one a Whereby client could send;
response schemas check recfw's answers. Where Whereby's document says more in prose
than in its schema (a list's ``cursor`` is ``null`` on the last page), the prose wins.
"""

from __future__ import annotations

DATE_TIME = {"type": "string", "format": "date-time"}
FIELDS = {"type": "array", "items": {"type": "string", "enum": ["hostRoomUrl", "viewerRoomUrl"]}}

CREATE_MEETING_REQUEST = {
    "type": "object",
    "required": ["endDate"],
    "properties": {
        "endDate": DATE_TIME,
        "startDate": DATE_TIME,
        "isLocked": {"type": "boolean"},
        "roomMode": {"type": "string", "enum": ["group", "normal"]},
        "roomNamePrefix": {"type": "string", "maxLength": 39},
        "roomNamePattern": {"type": "string", "enum": ["uuid", "human-short"]},
        "templateType": {"type": "string", "enum": ["viewerMode"]},
        "recording": {
            "type": "object",
            "required": ["type", "destination", "startTrigger"],
            "properties": {
                "type": {"type": "string", "enum": ["none", "local", "cloud"]},
                "destination": {
                    "type": ["object", "null"],
                    "required": ["provider"],
                    "properties": {
                        "provider": {"type": "string", "enum": ["s3", "whereby"]},
                        "authenticationType": {
                            "type": "string",
                            "enum": ["accessKey", "roleBased"],
                        },
                        "bucket": {"type": "string"},
                        "accessKeyId": {"type": "string"},
                        "accessKeySecret": {"type": "string"},
                        "fileFormat": {"type": "string", "enum": ["mkv", "mp4"]},
                        "oidcRoleArn": {"type": "string"},
                    },
                },
                "startTrigger": {
                    "type": ["string", "null"],
                    "enum": ["none", "prompt", "automatic", "automatic-2nd-participant", None],
                },
            },
        },
        "liveTranscription": {"type": "object", "required": ["destination", "startTrigger"]},
        "streaming": {
            "type": "object",
            "required": ["destination", "startTrigger"],
            "properties": {
                "destination": {
                    "type": "object",
                    "required": ["url"],
                    "properties": {"url": {"type": "string"}},
                },
                "startTrigger": {"type": "string", "enum": ["none", "prompt", "automatic"]},
            },
        },
        "fields": FIELDS,
    },
}

MEETING = {
    "type": "object",
    "required": ["meetingId", "roomUrl", "endDate"],
    "properties": {
        "meetingId": {"type": "string"},
        "roomName": {"type": "string", "pattern": "^/"},
        "roomUrl": {"type": "string", "format": "uri"},
        "startDate": DATE_TIME,
        "endDate": DATE_TIME,
        "hostRoomUrl": {"type": "string", "format": "uri"},
        "viewerRoomUrl": {"type": "string", "format": "uri"},
    },
}

RECORDING = {
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
        "recordingId": {"type": "string"},
        "roomSessionId": {"type": "string"},
        "filename": {"type": "string"},
        "startDate": DATE_TIME,
        "endDate": DATE_TIME,
        "sizeInMegaBytes": {"type": "number"},
    },
}


def page_of(item: dict) -> dict:
    return {
        "type": "object",
        "required": ["results", "cursor"],
        "properties": {
            "results": {"type": "array", "items": item},
            "cursor": {"type": ["string", "null"]},
        },
    }


MEETINGS_PAGE = page_of(MEETING)
RECORDINGS_PAGE = page_of(RECORDING)

ACCESS_LINK = {
    "type": "object",
    "required": ["accessLink", "expires"],
    "properties": {"accessLink": {"type": "string"}, "expires": {"type": "integer"}},
}

BULK_DELETE_REQUEST = {
    "type": "object",
    "required": ["recordingIds"],
    "properties": {"recordingIds": {"type": "array", "items": {"type": "string"}}},
}
