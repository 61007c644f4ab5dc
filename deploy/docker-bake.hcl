# Generated from contracts/src/bsante/contracts/services.toml by `make contracts`: edit that file, not this one.
# Build the service images: `docker buildx bake -f deploy/docker-bake.hcl` (from the
# repository root). One target: `docker buildx bake -f deploy/docker-bake.hcl patient`.

variable "TAG" {
  default = "dev"
}

group "default" {
  targets = ["identity", "patient", "sla-monitor", "forms", "documents", "dmp-connector", "mss-connector", "gateway"]
}

target "_service" {
  context    = "."
  dockerfile = "deploy/Dockerfile"
}

target "identity" {
  inherits = ["_service"]
  args     = { SERVICE = "identity", MODULE = "bsante.identity" }
  tags     = ["bsante/identity:${TAG}"]
}

target "patient" {
  inherits = ["_service"]
  args     = { SERVICE = "patient", MODULE = "bsante.patient" }
  tags     = ["bsante/patient:${TAG}"]
}

target "sla-monitor" {
  inherits = ["_service"]
  args     = { SERVICE = "sla-monitor", MODULE = "bsante.sla_monitor" }
  tags     = ["bsante/sla-monitor:${TAG}"]
}

target "forms" {
  inherits = ["_service"]
  args     = { SERVICE = "forms", MODULE = "bsante.forms" }
  tags     = ["bsante/forms:${TAG}"]
}

target "documents" {
  inherits = ["_service"]
  args     = { SERVICE = "documents", MODULE = "bsante.documents" }
  tags     = ["bsante/documents:${TAG}"]
}

target "dmp-connector" {
  inherits = ["_service"]
  args     = { SERVICE = "dmp-connector", MODULE = "bsante.dmp_connector" }
  tags     = ["bsante/dmp-connector:${TAG}"]
}

target "mss-connector" {
  inherits = ["_service"]
  args     = { SERVICE = "mss-connector", MODULE = "bsante.mss_connector" }
  tags     = ["bsante/mss-connector:${TAG}"]
}

target "gateway" {
  inherits = ["_service"]
  args     = { SERVICE = "gateway", MODULE = "bsante.gateway" }
  tags     = ["bsante/gateway:${TAG}"]
}
