{{/*
Names and labels shared by every template.
*/}}

{{- define "reconciler.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name, at most 63 characters (a DNS label). */}}
{{- define "reconciler.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "reconciler.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "reconciler.selectorLabels" -}}
app.kubernetes.io/name: {{ include "reconciler.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "reconciler.labels" -}}
helm.sh/chart: {{ include "reconciler.chart" . }}
{{ include "reconciler.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: reconciler
{{- end }}

{{- define "reconciler.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "reconciler.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "reconciler.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "reconciler.claimName" -}}
{{- default (printf "%s-data" (include "reconciler.fullname" .)) .Values.persistence.existingClaim }}
{{- end }}

{{/* Namespaces the namespaced RBAC rules are granted in: kubernetes.namespaces plus the release's own. */}}
{{- define "reconciler.rbacNamespaces" -}}
{{- append .Values.kubernetes.namespaces .Release.Namespace | uniq | toJson }}
{{- end }}

{{/* The daemon's config file (config.yaml in the ConfigMap). */}}
{{- define "reconciler.configFile" -}}
{{- $config := dict
      "repo" .Values.config.repo
      "pollInterval" .Values.config.pollInterval
      "listen" (printf "0.0.0.0:%d" (int .Values.config.port))
      "maxRunningWorkflows" .Values.config.maxRunningWorkflows
      "logLevel" .Values.config.logLevel
      "logFormat" .Values.config.logFormat
      "isolation" .Values.config.isolation
      "grace" .Values.config.grace
      "home" "/var/lib/reconciler"
      "store" (ternary "kubernetes" "sqlite" .Values.kubernetes.enabled)
}}
{{- if .Values.kubernetes.enabled }}
{{- /* Cluster-wide rights: every namespace, and environments' namespaces created on first use. Otherwise the
     namespaced mode: only the namespaces the Roles cover, and none created. */ -}}
{{- if .Values.rbac.clusterWide }}
{{- $_ := set $config "kubernetes" (dict "systemNamespace" .Release.Namespace "createNamespaces" true) }}
{{- else }}
{{- $_ := set $config "kubernetes" (dict "namespaces" (fromJsonArray (include "reconciler.rbacNamespaces" .))
      "systemNamespace" .Release.Namespace "createNamespaces" false) }}
{{- end }}
{{- end }}
{{- mergeOverwrite $config .Values.config.extra | toYaml }}
{{- end }}

{{/* The Secret holding the API token: apiToken.existingSecret, else the chart's own (apiToken.create), else "". */}}
{{- define "reconciler.apiTokenSecret" -}}
{{- if .Values.apiToken.existingSecret }}
{{- .Values.apiToken.existingSecret }}
{{- else if .Values.apiToken.create }}
{{- printf "%s-api-token" (include "reconciler.fullname" .) }}
{{- end }}
{{- end }}
