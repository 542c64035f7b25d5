"""Git forges servewise opens pull requests on: a local bare repository, GitHub, GitLab."""
