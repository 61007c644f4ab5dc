"""SLA monitor settings (env prefix SLA_MONITOR_)."""

from zoneinfo import ZoneInfo

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from bsante.chassis.settings import ServiceSettings


class SlaMonitorSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SLA_MONITOR_", extra="ignore")

    service_name: str = "sla-monitor"
    store_url: str = "sqlite:///var/sla-monitor.db"
    port: int = 8083
    timezone: str = Field("Europe/Paris", description="Days of usage indicators are local days")

    @property
    def timezone_info(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
