"""GitOps workflow reconciler: Argo-format workflows, run locally or on Kubernetes."""
