"""SLA monitor settings (env prefix SLA_MONITOR_)."""

from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from bsante.chassis.settings import ServiceSettings


class SlaMonitorSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SLA_MONITOR_", extra="ignore")

    service_name: str = "sla-monitor"
    store_url: str = "sqlite:///var/sla-monitor.db"
    port: int = 8083
    timezone: str = Field("Europe/Paris", description="Days of usage indicators are local days")
    probes_enabled: bool = Field(True, description="Run the probe cycle (off in some tests)")
    probe_interval_seconds: float = Field(30.0, gt=0, description="Time between probe cycles")
    probe_timeout_seconds: float = Field(5.0, gt=0, description="One probe's time limit")
    probe_url_template: str = Field(
        "http://{service}:8080", description="Distributed topology: base URL of each service"
    )
    synthetic_username: str = Field("", description="Account of the synthetic transactions")
    synthetic_password: SecretStr = Field(SecretStr(""), description="Its password")
    incident_after_failed_probes: int = Field(3, ge=1, description="Consecutive failures")
    job_failures_threshold: int = Field(5, ge=1, description="JobFailed per service in window")
    dead_letters_threshold: int = Field(10, ge=1, description="New dead letters in window")
    incident_window_minutes: float = Field(15.0, gt=0)
    ops_structure: str = Field("bsante-ops", description="Structure of the hosting operator")
    alsace_moselle_structures: list[str] = Field(
        default_factory=list, description="Structures on the Alsace-Moselle holiday calendar"
    )

    @property
    def timezone_info(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
