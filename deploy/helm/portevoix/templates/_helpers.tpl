{{/* Names and labels shared by the templates. */}}
{{- define "portevoix.fullname" -}}
{{- if contains "portevoix" .Release.Name }}{{ .Release.Name | trunc 40 | trimSuffix "-" }}{{ else }}{{ printf "%s-portevoix" .Release.Name | trunc 40 | trimSuffix "-" }}{{ end }}
{{- end }}

{{- define "portevoix.labels" -}}
app.kubernetes.io/part-of: portevoix
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* Selector labels of one service: (dict "root" $ "name" "content") */}}
{{- define "portevoix.selector" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end }}

{{- define "portevoix.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* The generated view of shared/topics.py and the services' Kafka access. */}}
{{- define "portevoix.registry" -}}
{{ .Files.Get "files/registry.yaml" }}
{{- end }}

{{- define "portevoix.kafkaCluster" -}}{{ include "portevoix.fullname" . }}-kafka{{- end }}
{{- define "portevoix.pgCluster" -}}{{ include "portevoix.fullname" . }}-pg{{- end }}

{{/* A service's Kafka user (the Strimzi KafkaUser and its Secret). */}}
{{- define "portevoix.kafkaUser" -}}{{ include "portevoix.fullname" .root }}-{{ .name }}{{- end }}

{{/* The Secret with a service's PostgreSQL role password (kubernetes.io/basic-auth). */}}
{{- define "portevoix.pgSecret" -}}
{{- $credentials := get .root.Values.postgres.credentials .name | default dict -}}
{{- $credentials.secret | default (printf "%s-pg-%s" (include "portevoix.fullname" .root) .name) -}}
{{- end }}

{{/* secretEnv entries as env vars: (dict "env" $map) */}}
{{- define "portevoix.secretEnv" -}}
{{- range $name, $ref := .env }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef: {name: {{ required (printf "secretEnv.%s.secret is required" $name) $ref.secret | quote }}, key: {{ required (printf "secretEnv.%s.key is required" $name) $ref.key | quote }}}
{{- end }}
{{- end }}

{{/* Kafka and PostgreSQL connection of one service: env vars. (dict "root" $ "name" "content") */}}
{{- define "portevoix.connectionEnv" -}}
{{- $root := .root -}}
{{- $k := $root.Values.kafka -}}
{{- $pg := $root.Values.postgres -}}
{{- if $k.create }}
- {name: PORTEVOIX_KAFKA_BOOTSTRAP_SERVERS, value: "{{ include "portevoix.kafkaCluster" $root }}-kafka-bootstrap:{{ $k.listenerPort }}"}
- {name: PORTEVOIX_KAFKA_SECURITY_PROTOCOL, value: SASL_SSL}
- {name: PORTEVOIX_KAFKA_SASL_MECHANISM, value: SCRAM-SHA-512}
- {name: PORTEVOIX_KAFKA_SASL_USERNAME, value: {{ include "portevoix.kafkaUser" . | quote }}}
- name: PORTEVOIX_KAFKA_SASL_PASSWORD
  valueFrom: {secretKeyRef: {name: {{ include "portevoix.kafkaUser" . | quote }}, key: password}}
- {name: PORTEVOIX_KAFKA_SSL_CAFILE, value: /etc/portevoix/kafka-ca/ca.crt}
{{- else }}
- {name: PORTEVOIX_KAFKA_BOOTSTRAP_SERVERS, value: {{ required "kafka.external.bootstrapServers is required when kafka.create is false" $k.external.bootstrapServers | quote }}}
- {name: PORTEVOIX_KAFKA_SECURITY_PROTOCOL, value: {{ $k.external.securityProtocol | quote }}}
{{- if hasPrefix "SASL" $k.external.securityProtocol }}
{{- $c := required (printf "kafka.external.credentials.%s is required with SASL" .name) (get $k.external.credentials .name) }}
- {name: PORTEVOIX_KAFKA_SASL_MECHANISM, value: {{ $k.external.saslMechanism | quote }}}
- name: PORTEVOIX_KAFKA_SASL_USERNAME
  valueFrom: {secretKeyRef: {name: {{ $c.secret | quote }}, key: {{ $c.usernameKey | default "username" | quote }}}}
- name: PORTEVOIX_KAFKA_SASL_PASSWORD
  valueFrom: {secretKeyRef: {name: {{ $c.secret | quote }}, key: {{ $c.passwordKey | default "password" | quote }}}}
{{- end }}
{{- if $k.external.caSecret.name }}
- {name: PORTEVOIX_KAFKA_SSL_CAFILE, value: /etc/portevoix/kafka-ca/ca.crt}
{{- end }}
{{- end }}
{{- $host := ternary (printf "%s-rw" (include "portevoix.pgCluster" $root)) $pg.external.host $pg.create }}
{{- $port := ternary 5432 $pg.external.port $pg.create }}
{{- $mode := ternary $pg.sslMode $pg.external.sslMode $pg.create }}
{{- $ca := ternary true (not (empty $pg.external.caSecret.name)) $pg.create }}
- {name: PORTEVOIX_DATABASE_URL, value: "postgresql://{{ required "postgres.external.host is required when postgres.create is false" $host }}:{{ $port }}/{{ $pg.database }}?sslmode={{ $mode }}{{ if $ca }}&sslrootcert=/etc/portevoix/pg-ca/ca.crt{{ end }}"}
# asyncpg takes the role and its password from PGUSER and PGPASSWORD: no password in a URL.
- name: PGUSER
  valueFrom: {secretKeyRef: {name: {{ include "portevoix.pgSecret" . | quote }}, key: username}}
- name: PGPASSWORD
  valueFrom: {secretKeyRef: {name: {{ include "portevoix.pgSecret" . | quote }}, key: password}}
{{- end }}

{{/* CA volumes for Kafka and PostgreSQL, with their mounts. */}}
{{- define "portevoix.caVolumes" -}}
{{- $k := .Values.kafka -}}
{{- $pg := .Values.postgres -}}
{{- if or $k.create $k.external.caSecret.name }}
- name: kafka-ca
  secret:
    secretName: {{ ternary (printf "%s-cluster-ca-cert" (include "portevoix.kafkaCluster" .)) $k.external.caSecret.name $k.create | quote }}
    items: [{key: {{ ternary "ca.crt" $k.external.caSecret.key $k.create | quote }}, path: ca.crt}]
{{- end }}
{{- if or $pg.create $pg.external.caSecret.name }}
- name: pg-ca
  secret:
    secretName: {{ ternary (printf "%s-ca" (include "portevoix.pgCluster" .)) $pg.external.caSecret.name $pg.create | quote }}
    items: [{key: {{ ternary "ca.crt" $pg.external.caSecret.key $pg.create | quote }}, path: ca.crt}]
{{- end }}
- name: tmp
  emptyDir: {sizeLimit: 64Mi}
{{- end }}

{{- define "portevoix.caMounts" -}}
{{- if or .Values.kafka.create .Values.kafka.external.caSecret.name }}
- {name: kafka-ca, mountPath: /etc/portevoix/kafka-ca, readOnly: true}
{{- end }}
{{- if or .Values.postgres.create .Values.postgres.external.caSecret.name }}
- {name: pg-ca, mountPath: /etc/portevoix/pg-ca, readOnly: true}
{{- end }}
- {name: tmp, mountPath: /tmp}
{{- end }}
