"""Map agent: a map component for the venue when the question is about place or route."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from app.agents.intents import Intent
from app.schemas import WeddingContext

MAP_INTENTS = frozenset({Intent.MAP, Intent.WHERE, Intent.DIRECTIONS})


class MapAgent:
    def components(self, ctx: WeddingContext, intents: list[Intent]) -> list[dict[str, Any]]:
        if not MAP_INTENTS.intersection(intents):
            return []
        component = self.map_component(ctx)
        return [component] if component else []

    @staticmethod
    def map_component(ctx: WeddingContext) -> dict[str, Any] | None:
        venue = ctx.venue
        if venue is None or venue.lat is None or venue.lng is None:
            return None
        name = venue.name or venue.address or "Wedding venue"
        label = quote(name, safe="")
        search = quote(venue.address or name, safe="")
        return {
            "kind": "map",
            "name": name,
            "address": venue.address,
            "lat": venue.lat,
            "lng": venue.lng,
            "links": {
                "kakao": f"https://map.kakao.com/link/map/{label},{venue.lat},{venue.lng}",
                "naver": f"https://map.naver.com/p/search/{search}",
            },
        }
