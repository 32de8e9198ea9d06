"""Application models, one sub-package per domain; `import models.all` registers every table.

The package itself imports nothing, so that core/ may import one model module (scope reads
users and institutions) without loading every domain's tables and their imports of core/."""
