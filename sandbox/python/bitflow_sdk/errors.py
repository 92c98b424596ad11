class BitflowSdkError(Exception):
    """Base of every error the SDK raises; `code` matches the daemon's error codes where one exists."""

    code = 'ERR_TASK'

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class ConfigError(BitflowSdkError):
    code = 'ERR_TASKPACK_CONFIG'


class JobError(BitflowSdkError):
    code = 'ERR_JOB'


class SafetensorsError(BitflowSdkError):
    code = 'ERR_SAFETENSORS'
