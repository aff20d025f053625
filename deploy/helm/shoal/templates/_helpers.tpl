{{/* Chart name. */}}
{{- define "shoal.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-scoped name of the chart's objects. */}}
{{- define "shoal.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "shoal.selectorLabels" -}}
app.kubernetes.io/name: {{ include "shoal.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "shoal.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "shoal.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "shoal.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "shoal.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "shoal.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The headless Service every node bootstraps from (DNS). */}}
{{- define "shoal.headless" -}}
{{- printf "%s-headless" (include "shoal.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "shoal.swarmKeySecret" -}}
{{- if .Values.swarmKey.existingSecret -}}
{{- .Values.swarmKey.existingSecret -}}
{{- else if .Values.swarmKey.value -}}
{{- printf "%s-swarm-key" (include "shoal.fullname" .) -}}
{{- else -}}
{{- fail "swarmKey: set swarmKey.existingSecret (a Secret made from `shoal swarm-key`) or swarmKey.value" -}}
{{- end -}}
{{- end -}}

{{- define "shoal.gatewaySecret" -}}
{{- if .Values.gateway.credentials.existingSecret -}}
{{- .Values.gateway.credentials.existingSecret -}}
{{- else if and .Values.gateway.credentials.accessKey .Values.gateway.credentials.secretKey -}}
{{- printf "%s-gateway" (include "shoal.fullname" .) -}}
{{- else -}}
{{- fail "gateway.credentials: a gateway other pods reach needs SigV4 credentials: set gateway.credentials.existingSecret, or accessKey and secretKey" -}}
{{- end -}}
{{- end -}}
