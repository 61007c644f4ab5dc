{{/*
The non-secret settings of one service, as a JSON object (its ConfigMap; its checksum rolls the
pods). Arguments: (list $root $entry) where $entry is the service's manifest entry.
*/}}
{{- define "bsante.serviceEnv" -}}
{{- $root := index . 0 -}}
{{- $e := index . 1 -}}
{{- $v := include "bsante.serviceValues" (list $root $e.name) | fromJson -}}
{{- $p := $e.env_prefix -}}
{{- $identity := printf "http://%s:8080" (include "bsante.serviceName" (list $root "identity")) -}}
{{- $env := dict -}}
{{- range $key, $value := $e.env -}}
{{- $_ := set $env (printf "%s%s" $p $key) $value -}}
{{- end -}}
{{- $_ := set $env (printf "%sPORT" $p) "8080" -}}
{{- $_ := set $env (printf "%sLOG_LEVEL" $p) $v.logLevel -}}
{{- $_ := set $env (printf "%sDRAIN_SECONDS" $p) (toString $v.drainSeconds) -}}
{{- $_ := set $env (printf "%sSHUTDOWN_TIMEOUT_SECONDS" $p) (toString $v.shutdownTimeoutSeconds) -}}
{{- if $root.Values.tracing.otlpEndpoint -}}
{{- $_ := set $env (printf "%sOTLP_ENDPOINT" $p) $root.Values.tracing.otlpEndpoint -}}
{{- end -}}
{{- $_ := set $env (printf "%sBUS_URL" $p) (printf "kafka://%s" $root.Values.kafka.bootstrapServers) -}}
{{- $_ := set $env (printf "%sJWKS_URL" $p) (printf "%s/.well-known/jwks.json" $identity) -}}
{{- if $root.Values.kafka.tls.enabled -}}
{{- $_ := set $env (printf "%sBUS_TLS" $p) "true" -}}
{{- if $root.Values.kafka.tls.caSecret -}}
{{- $_ := set $env (printf "%sBUS_CA_FILE" $p) "/etc/bsante/kafka-ca/ca.crt" -}}
{{- end -}}
{{- if $root.Values.kafka.tls.userSecret -}}
{{- $_ := set $env (printf "%sBUS_CERT_FILE" $p) "/etc/bsante/kafka-user/user.crt" -}}
{{- $_ := set $env (printf "%sBUS_KEY_FILE" $p) "/etc/bsante/kafka-user/user.key" -}}
{{- end -}}
{{- end -}}
{{- if $root.Values.kafka.sasl.username -}}
{{- $_ := set $env (printf "%sBUS_SASL_USERNAME" $p) $root.Values.kafka.sasl.username -}}
{{- $_ := set $env (printf "%sBUS_SASL_PASSWORD_FILE" $p) "/etc/bsante/kafka-sasl/password" -}}
{{- end -}}
{{- if eq $e.kind "gateway" -}}
{{- $routes := dict -}}
{{- range $s := (include "bsante.manifest" $root | fromJson).services -}}
{{- if and (eq $s.kind "service") (include "bsante.enabled" (list $root $s.name)) -}}
{{- $_ := set $routes $s.name (printf "http://%s:8080" (include "bsante.serviceName" (list $root $s.name))) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $env (printf "%sSERVICES" $p) (toJson $routes) -}}
{{- $_ := set $env (printf "%sTRUSTED_PROXIES" $p) (toJson $root.Values.gateway.trustedProxies) -}}
{{- $_ := set $env (printf "%sCORS_ORIGINS" $p) (toJson $root.Values.gateway.corsOrigins) -}}
{{- else -}}
{{- $_ := set $env (printf "%sSTORE_DATABASE" $p) (printf "%s%s" $root.Values.mongodb.databasePrefix ($e.name | replace "-" "_")) -}}
{{- $_ := set $env (printf "%sTRUSTED_PROXIES" $p) (toJson (list $root.Values.podNetworkCidr)) -}}
{{- range $peer := $e.calls -}}
{{- $_ := set $env (printf "%s%s_URL" $p ($peer | upper | replace "-" "_")) (printf "http://%s:8080" (include "bsante.serviceName" (list $root $peer))) -}}
{{- end -}}
{{- if $e.calls -}}
{{- $_ := set $env (printf "%sSERVICE_TOKEN_URL" $p) (printf "%s/oauth/token" $identity) -}}
{{- $_ := set $env (printf "%sSERVICE_CLIENT_SECRET_FILE" $p) "/etc/bsante/service-client/secret" -}}
{{- end -}}
{{- with include "bsante.certificates" (list $root $e.name) | fromJson -}}
{{- $dir := .mountPath -}}
{{- range $key, $file := .files -}}
{{- if kindIs "slice" $file -}}
{{- $paths := list -}}
{{- range $f := $file }}{{ $paths = append $paths (printf "%s/%s" $dir $f) }}{{ end -}}
{{- $_ := set $env (printf "%s%s" $p $key) (toJson $paths) -}}
{{- else -}}
{{- $_ := set $env (printf "%s%s" $p $key) (printf "%s/%s" $dir $file) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if eq $e.name "sla-monitor" -}}
{{- /* Services are named <release>-<service>: the monitor's {service} sits after the prefix. */ -}}
{{- $_ := set $env "SLA_MONITOR_PROBE_URL_TEMPLATE" (printf "http://%s-{service}:8080" (include "bsante.fullname" $root)) -}}
{{- end -}}
{{- if eq $e.name "documents" -}}
{{- $_ := set $env "DOCUMENTS_SEED_DEMO" (ternary "true" "false" $root.Values.demo.seed) -}}
{{- end -}}
{{- if eq $e.name "identity" -}}
{{- $_ := set $env "IDENTITY_SEED_DEMO" (ternary "true" "false" $root.Values.demo.seed) -}}
{{- $_ := set $env "IDENTITY_SIGNING_KEYS_DIR" "/etc/bsante/signing-keys" -}}
{{- $clients := dict -}}
{{- range $s := (include "bsante.manifest" $root | fromJson).services -}}
{{- if $s.calls -}}
{{- $_ := set $clients $s.name (dict "scopes" $s.scopes "secret_file" (printf "/etc/bsante/service-clients/%s" $s.name)) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $env "IDENTITY_SERVICE_CLIENTS" (toJson $clients) -}}
{{- end -}}
{{- end -}}
{{- range $key, $value := $v.env -}}
{{- $_ := set $env (printf "%s%s" $p $key) (toString $value) -}}
{{- end -}}
{{- toJson $env -}}
{{- end -}}
