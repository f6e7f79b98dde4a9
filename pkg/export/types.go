package export

// The Kubernetes objects written, reduced to the fields the mapping sets.
// Field names and YAML keys are those of k8s.io/api (apps/v1, batch/v1,
// core/v1); test/conformance decodes the output strictly into the real
// types, so a misspelt key fails there.

type object struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
	Spec       any        `yaml:"spec"`
}

type objectMeta struct {
	Name        string            `yaml:"name,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

type deploymentSpec struct {
	Replicas        int32              `yaml:"replicas"`
	MinReadySeconds int32              `yaml:"minReadySeconds,omitempty"`
	Selector        labelSelector      `yaml:"selector"`
	Strategy        deploymentStrategy `yaml:"strategy"`
	Template        podTemplateSpec    `yaml:"template"`
}

type labelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type deploymentStrategy struct {
	Type          string         `yaml:"type"`
	RollingUpdate *rollingUpdate `yaml:"rollingUpdate,omitempty"`
}

type rollingUpdate struct {
	MaxSurge       int32 `yaml:"maxSurge"`
	MaxUnavailable int32 `yaml:"maxUnavailable"`
}

type jobSpec struct {
	BackoffLimit            *int32          `yaml:"backoffLimit,omitempty"`
	ActiveDeadlineSeconds   *int64          `yaml:"activeDeadlineSeconds,omitempty"`
	TTLSecondsAfterFinished *int32          `yaml:"ttlSecondsAfterFinished,omitempty"`
	Template                podTemplateSpec `yaml:"template"`
}

type podTemplateSpec struct {
	Metadata objectMeta `yaml:"metadata"`
	Spec     podSpec    `yaml:"spec"`
}

type podSpec struct {
	RestartPolicy                 string      `yaml:"restartPolicy"`
	TerminationGracePeriodSeconds *int64      `yaml:"terminationGracePeriodSeconds,omitempty"`
	HostNetwork                   bool        `yaml:"hostNetwork,omitempty"`
	HostPID                       bool        `yaml:"hostPID,omitempty"`
	HostIPC                       bool        `yaml:"hostIPC,omitempty"`
	Containers                    []container `yaml:"containers"`
	Volumes                       []volume    `yaml:"volumes,omitempty"`
	ImagePullSecrets              []localRef  `yaml:"imagePullSecrets,omitempty"`
}

type container struct {
	Name            string           `yaml:"name"`
	Image           string           `yaml:"image"`
	ImagePullPolicy string           `yaml:"imagePullPolicy,omitempty"`
	Command         []string         `yaml:"command,omitempty"`
	Args            []string         `yaml:"args,omitempty"`
	WorkingDir      string           `yaml:"workingDir,omitempty"`
	Env             []envVar         `yaml:"env,omitempty"`
	Ports           []containerPort  `yaml:"ports,omitempty"`
	Resources       *resources       `yaml:"resources,omitempty"`
	VolumeMounts    []volumeMount    `yaml:"volumeMounts,omitempty"`
	LivenessProbe   *probe           `yaml:"livenessProbe,omitempty"`
	ReadinessProbe  *probe           `yaml:"readinessProbe,omitempty"`
	SecurityContext *securityContext `yaml:"securityContext,omitempty"`
}

type envVar struct {
	Name      string        `yaml:"name"`
	Value     string        `yaml:"value,omitempty"`
	ValueFrom *envVarSource `yaml:"valueFrom,omitempty"`
}

type envVarSource struct {
	SecretKeyRef secretKeySelector `yaml:"secretKeyRef"`
}

type secretKeySelector struct {
	Name string `yaml:"name"`
	Key  string `yaml:"key"`
}

type containerPort struct {
	ContainerPort int32  `yaml:"containerPort"`
	HostPort      int32  `yaml:"hostPort,omitempty"`
	HostIP        string `yaml:"hostIP,omitempty"`
	Protocol      string `yaml:"protocol"`
}

type resources struct {
	Limits   map[string]string `yaml:"limits,omitempty"`
	Requests map[string]string `yaml:"requests,omitempty"`
}

type volumeMount struct {
	Name      string `yaml:"name"`
	MountPath string `yaml:"mountPath"`
	SubPath   string `yaml:"subPath,omitempty"`
	ReadOnly  bool   `yaml:"readOnly,omitempty"`
}

type volume struct {
	Name                  string          `yaml:"name"`
	HostPath              *hostPathSource `yaml:"hostPath,omitempty"`
	PersistentVolumeClaim *pvcSource      `yaml:"persistentVolumeClaim,omitempty"`
	EmptyDir              *emptyDirSource `yaml:"emptyDir,omitempty"`
	Secret                *secretSource   `yaml:"secret,omitempty"`
}

type secretSource struct {
	SecretName string      `yaml:"secretName"`
	Items      []keyToPath `yaml:"items"`
}

type keyToPath struct {
	Key  string `yaml:"key"`
	Path string `yaml:"path"`
}

type hostPathSource struct {
	Path string `yaml:"path"`
}

type pvcSource struct {
	ClaimName string `yaml:"claimName"`
	ReadOnly  bool   `yaml:"readOnly,omitempty"`
}

type emptyDirSource struct {
	Medium string `yaml:"medium,omitempty"`
}

type probe struct {
	Exec                execAction `yaml:"exec"`
	InitialDelaySeconds int32      `yaml:"initialDelaySeconds,omitempty"`
	TimeoutSeconds      int32      `yaml:"timeoutSeconds"`
	PeriodSeconds       int32      `yaml:"periodSeconds"`
	FailureThreshold    int32      `yaml:"failureThreshold"`
}

type execAction struct {
	Command []string `yaml:"command"`
}

type securityContext struct {
	Privileged               *bool            `yaml:"privileged,omitempty"`
	Capabilities             *capabilities    `yaml:"capabilities,omitempty"`
	ReadOnlyRootFilesystem   *bool            `yaml:"readOnlyRootFilesystem,omitempty"`
	RunAsUser                *int64           `yaml:"runAsUser,omitempty"`
	RunAsGroup               *int64           `yaml:"runAsGroup,omitempty"`
	AllowPrivilegeEscalation *bool            `yaml:"allowPrivilegeEscalation,omitempty"`
	SELinuxOptions           *seLinuxOptions  `yaml:"seLinuxOptions,omitempty"`
	SeccompProfile           *securityProfile `yaml:"seccompProfile,omitempty"`
	AppArmorProfile          *securityProfile `yaml:"appArmorProfile,omitempty"`
}

type capabilities struct {
	Add  []string `yaml:"add,omitempty"`
	Drop []string `yaml:"drop,omitempty"`
}

type seLinuxOptions struct {
	User  string `yaml:"user,omitempty"`
	Role  string `yaml:"role,omitempty"`
	Type  string `yaml:"type,omitempty"`
	Level string `yaml:"level,omitempty"`
}

// securityProfile is the shape of both seccompProfile and appArmorProfile.
type securityProfile struct {
	Type             string `yaml:"type"`
	LocalhostProfile string `yaml:"localhostProfile,omitempty"`
}
