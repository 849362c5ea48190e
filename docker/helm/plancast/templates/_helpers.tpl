{{/* Names and labels, after `helm create`'s conventions. */}}

{{- define "plancast.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "plancast.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "plancast.selectorLabels" -}}
app.kubernetes.io/name: {{ include "plancast.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "plancast.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "plancast.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "plancast.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* The container port: the image's default, PLANCAST_PORT. */}}
{{- define "plancast.port" -}}
7526
{{- end }}

{{/* The Secret holding the database URL: the user's, the chart's, or none (SQLite). */}}
{{- define "plancast.databaseSecret" -}}
{{- if .Values.database.existingSecret }}
{{- .Values.database.existingSecret }}
{{- else if .Values.database.url }}
{{- include "plancast.fullname" . }}
{{- end }}
{{- end }}

{{/* The Secret holding the access token (key local-token): the user's or the chart's. */}}
{{- define "plancast.tokenSecret" -}}
{{- .Values.auth.existingSecret | default (include "plancast.fullname" .) }}
{{- end }}

{{/* Whether the chart makes a Secret of its own (a database URL or a token to hold). */}}
{{- define "plancast.ownSecret" -}}
{{- if or (and .Values.database.url (not .Values.database.existingSecret)) (not .Values.auth.existingSecret) }}true{{ end }}
{{- end }}

{{/* SQLite (no database URL) allows one server process, and a rolling update would run two. */}}
{{- define "plancast.sqlite" -}}
{{- if not (include "plancast.databaseSecret" .) }}true{{ end }}
{{- end }}

{{/*
Settings that cannot work together fail the render, with the fix in the message, rather than
a cluster running something that loses data.
*/}}
{{- define "plancast.validate" -}}
{{- if and .Values.database.url .Values.database.existingSecret }}
{{- fail "plancast: set database.url or database.existingSecret, not both" }}
{{- end }}
{{- if and .Values.auth.token .Values.auth.existingSecret }}
{{- fail "plancast: set auth.token or auth.existingSecret, not both" }}
{{- end }}
{{- if gt (int .Values.replicaCount) 1 }}
{{- if include "plancast.sqlite" . }}
{{- fail (printf "plancast: replicaCount %d needs PostgreSQL: set database.url (postgresql+asyncpg://USER:PASSWORD@HOST:5432/DB) or database.existingSecret. Without either the server uses SQLite, which one process owns" (int .Values.replicaCount)) }}
{{- end }}
{{- if and .Values.database.url (not (regexMatch "^postgres(ql)?(\\+asyncpg)?://" .Values.database.url)) }}
{{- fail (printf "plancast: replicaCount %d needs PostgreSQL, but database.url is not a postgresql+asyncpg:// URL" (int .Values.replicaCount)) }}
{{- end }}
{{- if not (or .Values.masterKey.existingSecret (.Values.config).kms_plugin) }}
{{- fail (printf "plancast: replicaCount %d needs masterKey.existingSecret (or config.kms_plugin): every replica must wrap the data keys with the same master key (plancast-server new-master-key makes one). Without it each pod would make its own, and what one wrote the others could not read" (int .Values.replicaCount)) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
A value for the ConfigMap. Helm reads every YAML number as a float, which it would print
as 3.3554432e+07: whole numbers are written as integers, which float settings read too.
*/}}
{{- define "plancast.settingValue" -}}
{{- if and (kindIs "float64" .) (eq . (floor .)) }}
{{- int64 . }}
{{- else }}
{{- toString . }}
{{- end }}
{{- end }}
