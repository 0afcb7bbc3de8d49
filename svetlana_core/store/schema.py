"""The database schema as a list of migrations, and the queries that read its current rows."""

from __future__ import annotations


# Each entry takes the schema from version i to i + 1 (PRAGMA user_version). Append, never edit:
# literal SQL only, so that a later change of a Python constant cannot alter an old migration.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE images (
            id INTEGER PRIMARY KEY,
            name TEXT UNIQUE NOT NULL,
            path TEXT,
            mask_path TEXT NOT NULL,
            axes TEXT,
            well TEXT,
            added_at TEXT NOT NULL
        )""",
        """CREATE TABLE classes (
            id INTEGER PRIMARY KEY,
            name TEXT UNIQUE NOT NULL,
            colour TEXT NOT NULL,
            position INTEGER NOT NULL
        )""",
        """CREATE TABLE annotations (
            id INTEGER PRIMARY KEY,
            image_id INTEGER NOT NULL REFERENCES images(id),
            label INTEGER NOT NULL CHECK (label > 0),
            class_id INTEGER REFERENCES classes(id),
            author TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL CHECK (source IN ('manual', 'correction', 'import', 'guided')),
            created_at TEXT NOT NULL,
            undoes INTEGER REFERENCES annotations(id)
        )""",
        # class_id makes the index covering for "current class per object" (label_counts).
        "CREATE INDEX annotations_object ON annotations (image_id, label, id, class_id)",
        "CREATE INDEX annotations_undoes ON annotations (undoes) WHERE undoes IS NOT NULL",
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            status TEXT NOT NULL
                CHECK (status IN ('queued', 'running', 'done', 'failed', 'stopped')),
            config TEXT,
            model_dir TEXT,
            device TEXT,
            error TEXT,
            author TEXT NOT NULL DEFAULT '',
            pid INTEGER,
            created_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT,
            heartbeat_at TEXT,
            summary TEXT
        )""",
        """CREATE TABLE epochs (
            run_id INTEGER NOT NULL REFERENCES runs(id),
            epoch INTEGER NOT NULL,
            metrics TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (run_id, epoch)
        )""",
        """CREATE TABLE predictions (
            id INTEGER PRIMARY KEY,
            model_dir TEXT NOT NULL,
            image_id INTEGER NOT NULL REFERENCES images(id),
            label INTEGER NOT NULL,
            class TEXT,
            confidence REAL,
            probabilities TEXT,
            created_at TEXT NOT NULL
        )""",
        "CREATE INDEX predictions_model_image ON predictions (model_dir, image_id, label)",
    ),
    (
        # 2: a cancel request gets a column of its own. It was a key of the summary JSON, which
        # the worker rewrites on every progress step, so a cancel that came between the
        # worker's read and write of the summary was lost. Requests recorded the old way are
        # carried over; json.dumps (the only writer of summaries) writes the key exactly so.
        "ALTER TABLE runs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0"
        " CHECK (cancel_requested IN (0, 1))",
        """UPDATE runs SET cancel_requested = 1
            WHERE summary LIKE '%"cancel_requested": true%'""",
    ),
    (
        # 3: labelling many objects at once and re-segmenting an image (issue 15).
        # - annotations.source also takes 'bulk' (a selection on the object map) and 'transfer'
        #   (labels carried to a new mask); a CHECK cannot be altered, so the table is rebuilt
        #   (its self-reference names the new table, which the rename carries over).
        # - annotations.action groups the rows of one user action (a selection, a rectangle),
        #   which one undo takes back together; NULL for a row on its own.
        # - images.segmentation counts the masks an image has had; annotations and predictions
        #   belong to one of them, and only the image's current one is read. The masks an image
        #   had before stay listed in masks, with what the transfer did.
        """CREATE TABLE annotations_v3 (
            id INTEGER PRIMARY KEY,
            image_id INTEGER NOT NULL REFERENCES images(id),
            label INTEGER NOT NULL CHECK (label > 0),
            class_id INTEGER REFERENCES classes(id),
            author TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL CHECK (source IN
                ('manual', 'correction', 'import', 'guided', 'bulk', 'transfer')),
            created_at TEXT NOT NULL,
            undoes INTEGER REFERENCES annotations_v3(id),
            action INTEGER,
            segmentation INTEGER NOT NULL DEFAULT 0
        )""",
        """INSERT INTO annotations_v3
            (id, image_id, label, class_id, author, source, created_at, undoes)
            SELECT id, image_id, label, class_id, author, source, created_at, undoes
            FROM annotations""",
        "DROP TABLE annotations",
        "ALTER TABLE annotations_v3 RENAME TO annotations",
        "CREATE INDEX annotations_object ON annotations (image_id, segmentation, label, id, class_id)",
        "CREATE INDEX annotations_undoes ON annotations (undoes) WHERE undoes IS NOT NULL",
        "CREATE INDEX annotations_action ON annotations (action) WHERE action IS NOT NULL",
        "ALTER TABLE images ADD COLUMN segmentation INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE predictions ADD COLUMN segmentation INTEGER NOT NULL DEFAULT 0",
        """CREATE TABLE masks (
            image_id INTEGER NOT NULL REFERENCES images(id),
            segmentation INTEGER NOT NULL,
            mask_path TEXT NOT NULL,
            replaced_at TEXT NOT NULL,
            report TEXT,
            PRIMARY KEY (image_id, segmentation)
        )""",
    ),
    (
        # 4: project settings the whole lab shares, e.g. the current model (issue 12).
        """CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            author TEXT NOT NULL DEFAULT '',
            changed_at TEXT NOT NULL
        )""",
    ),
    (
        # 5: removing an image from a project (issue 13 item 6). The row stays, with its
        # annotations, predictions and masks, so that the history survives and re-adding the
        # same files brings the labels back; removed_at (NULL: in the project) is what every
        # reader filters on. image_removals logs each removal and its undoing, with the name
        # the image had (a removed image gives its name up when other files are added by it).
        "ALTER TABLE images ADD COLUMN removed_at TEXT",
        "ALTER TABLE images ADD COLUMN removed_by TEXT",
        """CREATE TABLE image_removals (
            id INTEGER PRIMARY KEY,
            image_id INTEGER NOT NULL REFERENCES images(id),
            name TEXT NOT NULL,
            removed_at TEXT NOT NULL,
            removed_by TEXT NOT NULL DEFAULT '',
            restored_at TEXT
        )""",
    ),
)
SCHEMA_VERSION = len(_MIGRATIONS)

_RUN_COLUMNS = (
    "id", "kind", "status", "config", "model_dir", "device", "error", "author", "pid",
    "created_at", "started_at", "finished_at", "heartbeat_at", "summary", "cancel_requested",
)  # fmt: skip
# cancel_requested is written only by Project.request_cancel, in a statement of its own.
_RUN_UPDATABLE = frozenset(_RUN_COLUMNS) - {"id", "created_at", "cancel_requested"}
_RUN_JSON = frozenset({"config", "summary"})

# The current row of every object: the highest annotation id per (image, label). SQLite answers
# the GROUP BY from the (image_id, label, id) index without touching the table.
_CURRENT_SQL = """
    SELECT i.name AS image, a.label AS label, c.name AS class, a.author AS author,
           a.created_at AS time, a.source AS source
    FROM (SELECT MAX(a0.id) AS id FROM annotations AS a0
          JOIN images AS i0 ON i0.id = a0.image_id AND a0.segmentation = i0.segmentation
                                AND i0.removed_at IS NULL
          {where} GROUP BY a0.image_id, a0.label) AS last
    JOIN annotations AS a ON a.id = last.id
    JOIN classes AS c ON c.id = a.class_id
    JOIN images AS i ON i.id = a.image_id
"""

# Names and ids of the images in the project: a removed one is as unknown to writers of labels
# (its labels are history, not to be changed by an import).
_IMAGE_IDS_SQL = "SELECT name, id FROM images WHERE removed_at IS NULL"
