"""Shared FastAPI dependencies as Annotated aliases, for the API routers and the pages alike.

Each reads what the start-up hooks (app.lifespan) put on `app.state`, so handlers take typed
values and never touch the state themselves.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.service.streams import StreamSlots
from app.settings import Settings
from app.train.runner import JobRunner
from app.train.store import JobStore


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_store(request: Request) -> JobStore:
    store: JobStore = request.app.state.job_store
    return store


def get_runner(request: Request) -> JobRunner:
    runner: JobRunner = request.app.state.job_runner
    return runner


def get_stream_slots(request: Request) -> StreamSlots:
    slots: StreamSlots = request.app.state.event_streams
    return slots


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[JobStore, Depends(get_store)]
RunnerDep = Annotated[JobRunner, Depends(get_runner)]
StreamSlotsDep = Annotated[StreamSlots, Depends(get_stream_slots)]
