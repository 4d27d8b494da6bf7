{{/*
Named helpers of the chatconnect chart. Each says in one line why it exists.
*/}}

{{/* The chart name, overridable, so labels stay stable when the chart is vendored under another name. */}}
{{- define "chatconnect.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The base name of every namespaced object: release-based, at most 63 characters (a DNS label). */}}
{{- define "chatconnect.fullname" -}}
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

{{/* The helm.sh/chart label value: chart name and version, '+' replaced because labels forbid it. */}}
{{- define "chatconnect.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels every object of the release carries, so `kubectl get -l app.kubernetes.io/instance=<release>` finds them all. */}}
{{- define "chatconnect.labels" -}}
helm.sh/chart: {{ include "chatconnect.chart" . | quote }}
{{ include "chatconnect.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
app.kubernetes.io/part-of: chatconnect
{{- end }}

{{/* The immutable subset of the labels, used by the Deployment selector (which can never change). */}}
{{- define "chatconnect.selectorLabels" -}}
app.kubernetes.io/name: {{ include "chatconnect.name" . | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end }}

{{/* The operator's object name: one helper so the Deployment, RBAC and NOTES agree on it. */}}
{{- define "chatconnect.operator.fullname" -}}
{{- printf "%s-operator" (include "chatconnect.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The ServiceAccount the operator runs as: created by the chart, or an existing one named in values. */}}
{{- define "chatconnect.operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "chatconnect.operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The operator image reference: a digest wins over a tag; the tag defaults to the chart's appVersion. */}}
{{- define "chatconnect.operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Annotations of the CRDs: the keep policy (crds.keep) so `helm uninstall` never deletes every ChatCluster and ChatRegion. */}}
{{- define "chatconnect.crdAnnotations" -}}
{{- if .Values.crds.keep }}
helm.sh/resource-policy: keep
{{- end }}
{{- end }}

{{/* The OpenAPI schema of a corev1.ResourceRequirements with the ChatRegion default; written once, used by the gateway and the four services. */}}
{{- define "chatconnect.crd.resourceRequirements" -}}
type: object
description: >-
  Compute resources of each pod (corev1.ResourceRequirements: requests and limits,
  quantities such as 250m, 1, 256Mi). Replaced as a whole when set.
default:
  requests:
    cpu: 250m
    memory: 256Mi
  limits:
    memory: 1Gi
properties:
  requests:
    type: object
    description: The minimum resources the scheduler reserves for each container.
    additionalProperties:
      {{- include "chatconnect.crd.quantity" . | nindent 6 }}
  limits:
    type: object
    description: The most resources each container may use.
    additionalProperties:
      {{- include "chatconnect.crd.quantity" . | nindent 6 }}
{{- end }}

{{/* The OpenAPI schema of a resource.Quantity (an integer or a string such as 250m or 1Gi), as Kubernetes' own CRDs write it. */}}
{{- define "chatconnect.crd.quantity" -}}
anyOf:
  - type: integer
  - type: string
pattern: '^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$'
x-kubernetes-int-or-string: true
{{- end }}

{{/* The status.conditions schema in the metav1.Condition shape, shared by both CRDs so the operator writes one kind of condition. */}}
{{- define "chatconnect.crd.conditions" -}}
type: array
description: >-
  The latest observations of the resource's state, one per type (Ready, Progressing,
  Degraded), in the metav1.Condition shape.
maxItems: 16
x-kubernetes-list-type: map
x-kubernetes-list-map-keys:
  - type
items:
  type: object
  description: One aspect of the resource's current state (metav1.Condition).
  required:
    - type
    - status
    - lastTransitionTime
    - reason
    - message
  properties:
    type:
      type: string
      description: The condition type in CamelCase, e.g. Ready, Progressing or Degraded.
      maxLength: 316
      pattern: '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$'
    status:
      type: string
      description: Whether the condition holds.
      enum:
        - "True"
        - "False"
        - Unknown
    observedGeneration:
      type: integer
      format: int64
      minimum: 0
      description: The .metadata.generation the condition was set for.
    lastTransitionTime:
      type: string
      format: date-time
      description: When the status last changed.
    reason:
      type: string
      description: A programmatic identifier in CamelCase for the last transition.
      minLength: 1
      maxLength: 1024
      pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$'
    message:
      type: string
      description: A human-readable explanation of the transition; may be empty.
      maxLength: 32768
{{- end }}

{{/* The autoscaler status of one component (gateway or TURN), shared by both fields of ChatRegion.status. */}}
{{- define "chatconnect.crd.scaleStatus" -}}
type: object
properties:
  replicas:
    type: integer
    format: int32
    minimum: 0
    description: Replicas the operator last set on the Deployment.
  load:
    type: integer
    format: int64
    minimum: 0
    description: The summed fresh load reports of the region (open connections, or TURN allocations).
  lastScaleTime:
    type: string
    format: date-time
    description: When the operator last changed the replica count, in either direction.
  lastScaleUpTime:
    type: string
    format: date-time
    description: When the operator last added pods (drives scaleUpCooldownSeconds).
  lastScaleDownTime:
    type: string
    format: date-time
    description: When the operator last removed pods (drives scaleDownCooldownSeconds).
{{- end }}

{{/* The release the ChatCluster runs: cluster.version, else the operator's image tag, else appVersion, so services and operator match by default. */}}
{{- define "chatconnect.cluster.version" -}}
{{- .Values.cluster.version | default .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* Fails the render when a region of `regions` has no entry in cluster.stores: the operator could not configure it. */}}
{{- define "chatconnect.checkRegionStores" -}}
{{- $stores := list }}
{{- range .Values.cluster.stores }}
{{- $stores = append $stores .region }}
{{- end }}
{{- range .Values.regions }}
{{- if not (has .name $stores) }}
{{- fail (printf "regions: region %q has no entry in cluster.stores; add its scylla and redis endpoints" .name) }}
{{- end }}
{{- end }}
{{- end }}

{{/* Annotations of a ChatCluster or ChatRegion: the user's, plus the keep policy (keepCustomResources) so uninstalling the operator never tears a deployment down. */}}
{{- define "chatconnect.customResourceAnnotations" -}}
{{- $annotations := deepCopy (.annotations | default dict) }}
{{- if .root.Values.keepCustomResources }}
{{- $_ := set $annotations "helm.sh/resource-policy" "keep" }}
{{- end }}
{{- with $annotations -}}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
