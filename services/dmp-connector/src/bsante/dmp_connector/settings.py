"""DMP connector settings (env prefix DMP_CONNECTOR_)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from bsante.chassis.settings import ServiceSettings


class DmpConnectorSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DMP_CONNECTOR_", extra="ignore")

    service_name: str = "dmp-connector"
    store_url: str = "sqlite:///var/dmp-connector.db"
    port: int = 8086
    documents_url: str = Field(
        "http://127.0.0.1:8000/api/documents",
        description="Documents service base URL (signed CDA, scope documents:read)",
    )
    patient_url: str = Field(
        "http://127.0.0.1:8000/api/patient",
        description="Patient service base URL (INS of a record, scope patient:read)",
    )
    identity_url: str = Field(
        "http://127.0.0.1:8000/api/identity",
        description="Identity service base URL (StructIdNat of a structure, scope directory:read)",
    )
    peer_timeout_seconds: float = Field(10.0, gt=0, le=60)
    # The DMP (or any XDS.b repository and registry): endpoints, TLS client, VIHF signature.
    dmp_repository_url: str = Field(
        "http://127.0.0.1:8090/repository", description="ITI-41 and ITI-43 endpoint"
    )
    dmp_registry_url: str = Field(
        "http://127.0.0.1:8090/registry", description="ITI-18 and ITI-57 endpoint"
    )
    dmp_admin_url: str = Field(
        "http://127.0.0.1:8090/admin", description="The DMP's administrative services"
    )
    dmp_timeout_seconds: float = Field(20.0, gt=0, le=120)
    dmp_tls_cert_file: str = Field("", description="ORG AUTH_CLI certificate (PEM), TLS client")
    dmp_tls_key_file: str = Field("", description="Its private key (PEM)")
    dmp_ca_file: str = Field("", description="CAs of the DMP's server certificate (PEM)")
    signing_cert_file: str = Field("", description="VIHF signing certificate (PEM)")
    signing_key_file: str = Field("", description="VIHF signing key (PEM)")
    lps_id: str = "BSANTE-BUREAUTIQUE"
    lps_name: str = "Bureautique Santé"
    lps_version: str = "0.1.0"
    lps_homologation: str = Field("", description="LPS_ID_HOMOLOGATION_DMP given by the CNAM")
    source_id: str = Field(
        "1.2.250.1.999.1.1", description="XDSSubmissionSet.sourceId: the producer's OID"
    )
    practice_setting_code: str = Field("AMBULATOIRE", description="JDV_J04, when the CDA has none")
    simulator_port: int = Field(
        8090,
        ge=0,
        le=65535,
        description="Embedded platform: the port of the DMP simulator it serves (0: any free)",
    )
    job_attempts: int = Field(8, ge=1, le=50)
    job_poll_seconds: float = Field(
        0.05, gt=0, le=10, description="How often the job worker looks for due DMP calls"
    )
    job_timeout_seconds: float = Field(
        60.0,
        gt=0,
        le=600,
        description="One DMP call's time limit (a crashed call's job runs "
        "again once this and the lease margin have passed)",
    )
    job_initial_backoff_seconds: float = Field(2.0, gt=0)
