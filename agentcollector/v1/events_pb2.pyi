from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Event(_message.Message):
    __slots__ = ("event_id", "run_id", "parent_event_id", "event_type", "agent_name", "timestamp", "data")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    AGENT_NAME_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    run_id: str
    parent_event_id: str
    event_type: str
    agent_name: str
    timestamp: str
    data: _struct_pb2.Struct
    def __init__(self, event_id: _Optional[str] = ..., run_id: _Optional[str] = ..., parent_event_id: _Optional[str] = ..., event_type: _Optional[str] = ..., agent_name: _Optional[str] = ..., timestamp: _Optional[str] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class IngestRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    def __init__(self, events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ...) -> None: ...

class IngestResponse(_message.Message):
    __slots__ = ("status", "message", "count", "failed", "errors")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    status: str
    message: str
    count: int
    failed: int
    errors: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, status: _Optional[str] = ..., message: _Optional[str] = ..., count: _Optional[int] = ..., failed: _Optional[int] = ..., errors: _Optional[_Iterable[str]] = ...) -> None: ...
