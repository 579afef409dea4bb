{{/* Names and labels. */}}
{{- define "wg.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels of one component: pass (list $ "control-plane"). */}}
{{- define "wg.selector" -}}
app.kubernetes.io/name: {{ index . 1 }}
app.kubernetes.io/part-of: webhook-gateway
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
{{- end -}}

{{- define "wg.labels" -}}
{{ include "wg.selector" . }}
app.kubernetes.io/managed-by: {{ (index . 0).Release.Service }}
app.kubernetes.io/version: {{ (index . 0).Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" (index . 0).Chart.Name (index . 0).Chart.Version }}
{{- end -}}

{{- define "wg.image" -}}
{{- $ := index . 0 -}}
{{- printf "%s/%s:%s" $.Values.image.repository (index . 1) (default $.Chart.AppVersion $.Values.image.tag) -}}
{{- end -}}

{{/* Secret names. */}}
{{- define "wg.cpSecret" -}}
{{- default (printf "%s-control-plane" (include "wg.fullname" .)) .Values.secrets.existingSecret -}}
{{- end -}}
{{- define "wg.pgSecret" -}}
{{- default (printf "%s-postgres" (include "wg.fullname" .)) .Values.postgres.existingSecret -}}
{{- end -}}
{{- define "wg.dpSecret" -}}
{{- default (printf "%s-data-plane" (include "wg.fullname" .)) .Values.dataPlane.tokenSecret -}}
{{- end -}}
{{- define "wg.tlsSecret" -}}
{{- default (printf "%s-tls" (include "wg.fullname" .)) .Values.tls.existingSecret -}}
{{- end -}}

{{/* The librdkafka properties, comma-separated (empty when there are none). SASL credentials are
     expanded by the kubelet from the two env vars the kafka-env template defines before it. */}}
{{- define "wg.kafkaProperties" -}}
{{- $props := list -}}
{{- range $k, $v := .Values.kafka.properties -}}
{{- $props = append $props (printf "%s=%v" $k $v) -}}
{{- end -}}
{{- if .Values.kafka.tls.existingSecret -}}
{{- $props = append $props "ssl.ca.location=/etc/gateway/kafka-tls/ca.crt" -}}
{{- end -}}
{{- if .Values.kafka.sasl.existingSecret -}}
{{- $props = append $props "sasl.username=$(KAFKA_SASL_USERNAME)" -}}
{{- $props = append $props "sasl.password=$(KAFKA_SASL_PASSWORD)" -}}
{{- end -}}
{{- join "," $props -}}
{{- end -}}

{{/* Kafka env of a container: pass (list $ "DP") or (list $ "CP"). */}}
{{- define "wg.kafkaEnv" -}}
{{- $ := index . 0 -}}
{{- $p := index . 1 -}}
- name: {{ $p }}_KAFKA_BOOTSTRAP
  value: {{ $.Values.kafka.bootstrap | quote }}
- name: {{ $p }}_KAFKA_TOPIC
  value: {{ $.Values.kafka.topic | quote }}
{{- if $.Values.kafka.sasl.existingSecret }}
# Only referenced by the properties below, expanded by the kubelet (never read by the binary).
- name: KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $.Values.kafka.sasl.existingSecret }}
      key: username
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $.Values.kafka.sasl.existingSecret }}
      key: password
{{- end }}
{{- with include "wg.kafkaProperties" $ }}
- name: {{ $p }}_KAFKA_PROPERTIES
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* Security contexts: the restricted Pod Security profile, uid 10001 (the image's `gateway` user). */}}
{{- define "wg.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}
{{- define "wg.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 10001
capabilities:
  drop: ["ALL"]
{{- end -}}

{{- define "wg.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
