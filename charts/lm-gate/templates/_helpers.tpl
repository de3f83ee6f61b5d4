{{/* Names and labels. */}}
{{- define "lm-gate.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "lm-gate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "lm-gate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lm-gate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "lm-gate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "lm-gate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "lm-gate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "lm-gate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "lm-gate.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The gRPC host the Envoy side dials: the Service's cluster-local name. */}}
{{- define "lm-gate.grpcHost" -}}
{{- printf "%s.%s.svc.cluster.local" (include "lm-gate.fullname" .) .Release.Namespace -}}
{{- end -}}

{{/*
The gate's config: values.config with the fields the chart owns set from the chart's own values
(listen addresses matching the Service and probes, the audit sink, the keys file and Redis
mounts), as a dict.
*/}}
{{- define "lm-gate.configDict" -}}
{{- $cfg := deepCopy (default dict .Values.config) -}}
{{- $server := default dict (get $cfg "server") -}}
{{- $_ := set $server "grpcAddress" (printf "0.0.0.0:%d" (int .Values.ports.grpc)) -}}
{{- $_ := set $server "adminAddress" (printf "0.0.0.0:%d" (int .Values.ports.admin)) -}}
{{- $_ := set $cfg "server" $server -}}
{{- $audit := default dict (get $cfg "audit") -}}
{{- if eq .Values.audit.sink "stdout" -}}
{{- $_ := set $audit "path" "-" -}}
{{- else -}}
{{- $_ := set $audit "path" "/var/lib/lm-gate/audit/audit.log" -}}
{{- end -}}
{{- $_ := set $cfg "audit" $audit -}}
{{- if .Values.apiKeysSecret.name -}}
{{- $identity := default dict (get $cfg "identity") -}}
{{- $_ := set $identity "keysFile" (printf "/etc/lm-gate/keys/%s" .Values.apiKeysSecret.key) -}}
{{- $_ := set $cfg "identity" $identity -}}
{{- end -}}
{{- if .Values.redis.enabled -}}
{{- $redis := default dict (get $cfg "redis") -}}
{{- $_ := set $redis "url" "${LMGATE_REDIS_URL}" -}}
{{- $_ := set $cfg "redis" $redis -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/*
Fields the gate cannot apply by hot reload (extproc/config/restart.ts RESTART_ONLY; a test keeps
this list equal to it). Their values are hashed into the pod template, so changing one rolls the
pods; every other config change reaches the running gate through the mounted ConfigMap.
*/}}
{{- define "lm-gate.restartOnlyFields" -}}
server: [grpcAddress, unixSocket, adminAddress, workers, parseWorkers]
audit: [path, maxPendingBytes, maxRefusalBytes, durability, fsyncIntervalMs, rotateBytes, rotateMs, checkpointRecords, checkpointMs, signingKey, capture.path]
killSwitch: [resyncIntervalMs, maxEntries]
limits: [store, maxMemoryEntries, webhook]
redis: [url, sentinel, cluster, username, password, keyPrefix, connectTimeoutMs, commandTimeoutMs]
{{- end -}}

{{- define "lm-gate.restartChecksum" -}}
{{- $cfg := include "lm-gate.configDict" . | fromYaml -}}
{{- $fields := include "lm-gate.restartOnlyFields" . | fromYaml -}}
{{- $picked := dict -}}
{{- range $section, $names := $fields -}}
{{- $sec := default dict (get $cfg $section) -}}
{{- range $name := $names -}}
{{- /* A nested field (capture.path) is walked one key at a time. */ -}}
{{- $v := $sec -}}
{{- $found := true -}}
{{- range $key := splitList "." $name -}}
{{- if and $found (kindIs "map" $v) (hasKey $v $key) -}}
{{- $v = get $v $key -}}
{{- else -}}
{{- $found = false -}}
{{- end -}}
{{- end -}}
{{- if $found -}}
{{- $_ := set $picked (printf "%s.%s" $section $name) $v -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $picked | sha256sum -}}
{{- end -}}

{{/*
Seconds the pod needs after SIGTERM at most: the preStop sleep, the drain, then a cut stream's
two settle waits (server.settleTimeoutMs each), rounded up.
*/}}
{{- define "lm-gate.shutdownSeconds" -}}
{{- $server := default dict (get (include "lm-gate.configDict" . | fromYaml) "server") -}}
{{- $drain := int (default 15000 (get $server "drainTimeoutMs")) -}}
{{- $settle := int (default 2000 (get $server "settleTimeoutMs")) -}}
{{- add (int .Values.preStopSleepSeconds) (div (add $drain (mul 2 $settle) 999) 1000) -}}
{{- end -}}
