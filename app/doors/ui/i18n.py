"""The browser UI's words in English and Japanese. Answers follow the question's language
(models/prompts.py); this file only holds the UI's own text.

Usage:
    t("login.title", "ja")            # -> "ログイン"
    t("ingest.done", "en", files=3)   # placeholders are str.format fields
"""

from __future__ import annotations

LANGUAGES = {"en": "English", "ja": "日本語"}

_TEXT: dict[str, tuple[str, str]] = {
    # key: (English, Japanese)
    "app.title": ("kura", "kura 蔵"),
    "lang.label": ("Language", "言語"),
    "login.title": ("Sign in", "ログイン"),
    "login.user": ("User name", "ユーザー名"),
    "login.password": ("Password", "パスワード"),
    "login.submit": ("Sign in", "ログイン"),
    "login.failed": ("Wrong user name or password.", "ユーザー名またはパスワードが違います。"),
    "login.locked": (
        "Too many failed sign-ins: this account is locked until {until}. Try again then, "
        "or ask an admin to unlock it.",
        "ログインの失敗が続いたため、このアカウントは {until} までロックされています。"
        "その後に再度お試しいただくか、管理者にロック解除を依頼してください。",
    ),
    "login.locked_later": (
        "Too many failed sign-ins: this account is locked for a while. Try again later, "
        "or ask an admin to unlock it.",
        "ログインの失敗が続いたため、このアカウントはしばらくロックされています。"
        "後で再度お試しいただくか、管理者にロック解除を依頼してください。",
    ),
    "login.disabled": (
        "This account is disabled. Ask an admin to enable it.",
        "このアカウントは無効です。管理者に有効化を依頼してください。",
    ),
    "login.idle": (
        "You were signed out after {minutes} minutes without activity. Sign in again.",
        "{minutes} 分間操作がなかったため、ログアウトしました。再度ログインしてください。",
    ),
    "login.expired": ("Your session ended: {detail}", "セッションが終了しました: {detail}"),
    "login.no_users": (
        "No accounts exist yet. On the server, create the first admin with `kura users bootstrap` "
        "(or `kura users add`).",
        "アカウントがまだありません。サーバーで `kura users bootstrap`"
        "(または `kura users add`)を実行し、"
        "最初の管理者を作成してください。",
    ),
    "login.directory_down": (
        "The company directory cannot be reached, so directory accounts cannot sign in right now. "
        "Try again later; local accounts still work.",
        "社内ディレクトリに接続できないため、ディレクトリのアカウントは今ログインできません。"
        "しばらくしてから再度お試しください(ローカルアカウントは使えます)。",
    ),
    "login.conflict": (
        "This name belongs to another kura account. Ask an admin.",
        "この名前は別の kura アカウントで使われています。管理者に連絡してください。",
    ),
    "login.not_mapped": (
        "Your directory account has no kura role (none of your groups is mapped). Ask an admin.",
        "ディレクトリのアカウントに kura のロールがありません(どのグループも対応付けられていません)。"
        "管理者に連絡してください。",
    ),
    "login.sso": ("Sign in with {provider}", "{provider} でログイン"),
    "logout": ("Sign out", "ログアウト"),
    "signed_in_as": ("Signed in as **{name}** ({roles})", "**{name}** としてログイン中({roles})"),
    "pw.title": ("Choose a new password", "新しいパスワードを設定"),
    "pw.why": (
        "Your password was set by an admin; choose your own before you continue.",
        "管理者が設定したパスワードです。続ける前にご自身のパスワードを設定してください。",
    ),
    "pw.old": ("Current password", "現在のパスワード"),
    "pw.new": ("New password (12 characters or more)", "新しいパスワード(12文字以上)"),
    "pw.repeat": ("New password again", "新しいパスワード(確認)"),
    "pw.mismatch": ("The two new passwords differ.", "新しいパスワードが一致しません。"),
    "pw.submit": ("Change password", "パスワードを変更"),
    "pw.done": ("Password changed.", "パスワードを変更しました。"),
    "nav.ask": ("Ask", "質問する"),
    "nav.documents": ("Documents", "文書"),
    "nav.upload": ("Upload", "アップロード"),
    "nav.users": ("Users", "ユーザー"),
    "nav.system": ("System", "システム"),
    "nav.audit": ("Audit log", "監査ログ"),
    "nav.jobs": ("Jobs", "ジョブ"),
    "nav.section.employee": ("Search", "検索"),
    "nav.section.admin": ("Administration", "管理"),
    "nav.section.auditor": ("Audit", "監査"),
    "denied": (
        "Your account may not open this page (it needs the {role} role). "
        "Ask an admin if you need it.",
        "このページを開く権限がありません({role} ロールが必要です)。"
        "必要な場合は管理者に依頼してください。",
    ),
    # ask / search
    "ask.title": ("Ask your documents", "文書に質問する"),
    "ask.mode": ("Mode", "モード"),
    "ask.mode.ask": ("Answer with citations", "回答(引用つき)"),
    "ask.mode.search": ("Search passages only", "文書検索のみ"),
    "ask.placeholder": ("Ask a question about your documents", "文書について質問してください"),
    "search.placeholder": ("Words to search for", "検索する語句"),
    "ask.filters": ("Filters", "絞り込み"),
    "ask.filter.folder": ("Folder path contains", "フォルダーのパスに含む"),
    "ask.filter.types": ("File types", "ファイル形式"),
    "ask.new": ("New conversation", "新しい会話"),
    "ask.searching": ("Searching the documents you may read…", "閲覧可能な文書を検索しています…"),
    "ask.loading": (
        "Loading the language model (first question only)…",
        "言語モデルを読み込んでいます(最初の質問のみ)…",
    ),
    "ask.sources": ("Sources", "出典"),
    "ask.copy": ("Copy answer", "回答をコピー"),
    "ask.helpful": ("Was this answer helpful?", "この回答は役に立ちましたか?"),
    "ask.thanks": (
        "Thank you: your feedback was saved for the admins.",
        "ありがとうございます。管理者向けに保存しました。",
    ),
    "ask.nothing": (
        "No relevant documents were found in the documents you may read. Try other words, "
        "or ask an admin whether the document was ingested and which groups may read it.",
        "閲覧可能な文書の中に関連する資料は見つかりませんでした。別の言葉で試すか、"
        "文書が登録済みか、どのグループが閲覧できるかを管理者に確認してください。",
    ),
    "ask.timing": (
        "first token {first:.1f} s · total {total:.1f} s",
        "最初の応答 {first:.1f} 秒・合計 {total:.1f} 秒",
    ),
    "ask.in_context": ("Show in context", "前後の文脈を表示"),
    "search.results": ("{n} passages", "{n} 件の文書箇所"),
    "search.none": (
        "No matching passages in the documents you may read.",
        "閲覧可能な文書に一致する箇所はありません。",
    ),
    "cite.file": ("File", "ファイル"),
    "cite.page": ("Page", "ページ"),
    "cite.section": ("Section", "見出し"),
    "cite.score": ("score", "スコア"),
    # admin: upload
    "upload.title": ("Upload documents", "文書のアップロード"),
    "upload.folder": ("Folder name under the data directory", "データディレクトリ内のフォルダー名"),
    "upload.readers": ("Who may read these documents?", "この文書を閲覧できるのは?"),
    "upload.readers.groups": ("Only members of the groups below", "下のグループのメンバーのみ"),
    "upload.readers.everyone": (
        "Everyone with a kura account (group “everyone”)",
        "kura のアカウントを持つ全員(everyone グループ)",
    ),
    "upload.groups": ("Groups (comma-separated)", "グループ(カンマ区切り)"),
    "upload.groups.help": (
        "For example: hr, managers. Members of any of these groups may read the documents.",
        "例: hr, managers。いずれかのグループのメンバーが文書を閲覧できます。",
    ),
    "upload.choose_readers": (
        "Choose who may read these documents first: named groups, or everyone.",
        "先に閲覧できる人(指定したグループ、または全員)を選んでください。",
    ),
    "upload.need_groups": (
        "Name at least one group, or choose “everyone” on purpose.",
        "グループを1つ以上入力するか、意図して「全員」を選んでください。",
    ),
    "upload.only_hidden": (
        "All {n} chosen files are hidden or system files (such as .DS_Store); nothing to ingest.",
        "選択した {n} 件はすべて隠しファイルまたはシステムファイル(.DS_Store など)です。"
        "取り込むものはありません。",
    ),
    "upload.relabel": (
        "This upload changes who may read {n} documents that are already ingested (folder "
        "{folder}). Nothing was saved yet. Check the list, then confirm or cancel.",
        "このアップロードは、取り込み済みの {n} 件の文書(フォルダー {folder})の閲覧者を変更します。"
        "まだ何も保存していません。一覧を確認してから、確定または取り消してください。",
    ),
    "upload.relabel.confirm": (
        "Yes, change who may read them and ingest",
        "はい、閲覧者を変更して取り込む",
    ),
    "upload.relabel.cancel": ("Cancel", "取り消す"),
    "upload.cancelled": (
        "Cancelled: nothing was saved and no permission changed.",
        "取り消しました。何も保存されず、権限も変更されていません。",
    ),
    "upload.change_line": (
        "**{file}**: readable now by {now}; after this upload by {after}{upload}",
        "**{file}**: 現在の閲覧グループ {now}、このアップロード後は {after}{upload}",
    ),
    "upload.copy_line": (
        "**{file}** (readable by {now}) has the same content as the uploaded {upload}, which would "
        "be readable by {after}",
        "**{file}**(閲覧グループ {now})は、アップロードする {upload} と同じ内容です。"
        "アップロード後は {after} が閲覧できます",
    ),
    "upload.skipped": (
        "Skipped {n} hidden or system files (not saved, not ingested):",
        "隠しファイル・システムファイル {n} 件をスキップしました(保存も取り込みもしていません):",
    ),
    "upload.dir": ("Choose a folder", "フォルダーを選択"),
    "upload.files": ("…or single files", "…または個別のファイル"),
    "upload.hint": (
        "Drop a folder or files on the boxes above, or press Upload to choose them; "
        "at most {mb} MB per file. Hidden and system files are skipped.",
        "上の枠にフォルダーやファイルをドロップするか、「Upload」を押して選択してください。"
        "1ファイル {mb} MB まで。隠しファイルとシステムファイルはスキップされます。",
    ),
    "upload.start": ("Save and ingest", "保存して取り込む"),
    "upload.nothing": (
        "Choose a folder or files first.",
        "先にフォルダーまたはファイルを選択してください。",
    ),
    "upload.saved": (
        "Saved {n} files to the folder {folder}.",
        "{n} 件のファイルをフォルダー {folder} に保存しました。",
    ),
    "upload.progress": (
        "{done}/{total} files · {chunks} chunks · {rate:.2f} files/s · {current}",
        "{done}/{total} ファイル・{chunks} チャンク・{rate:.2f} ファイル/秒・{current}",
    ),
    "upload.eta": (" · about {eta:.0f} s left", "・残り約 {eta:.0f} 秒"),
    "upload.loading": ("Loading the embedding model…", "埋め込みモデルを読み込んでいます…"),
    "ingest.done": (
        "Ingestion finished: {ingested} ingested, {unchanged} unchanged, {linked} linked, "
        "{removed} removed, "
        "{failed} failed, {chunks} chunks in {seconds:.1f} s.",
        "取り込み完了: 取り込み {ingested}・変更なし {unchanged}・リンク {linked}・削除 {removed}・"
        "失敗 {failed}・{chunks} チャンク・{seconds:.1f} 秒。",
    ),
    "ingest.failures": ("Files that could not be ingested", "取り込めなかったファイル"),
    # admin: documents
    "docs.title": ("Documents", "文書一覧"),
    "docs.none": (
        "No documents yet. Upload some on the Upload page.",
        "文書はまだありません。アップロードページから追加してください。",
    ),
    "docs.pick": ("Document", "文書"),
    "docs.groups": ("Groups that may read it", "閲覧できるグループ"),
    "docs.save_groups": ("Save groups", "グループを保存"),
    "docs.groups_saved": ("Groups changed on {n} paths.", "{n} 件のパスのグループを変更しました。"),
    "docs.reingest": ("Re-ingest its folder", "フォルダーを再取り込み"),
    "docs.delete": ("Delete", "削除"),
    "docs.confirm": ("Yes, delete this document", "この文書を削除する"),
    "docs.deleted": ("Deleted.", "削除しました。"),
    "docs.feedback": ("Answer feedback from employees", "社員からの回答フィードバック"),
    "docs.no_feedback": ("No feedback yet.", "フィードバックはまだありません。"),
    # admin: users
    "users.title": ("Users and groups", "ユーザーとグループ"),
    "users.add": ("Add a user", "ユーザーを追加"),
    "users.name": ("User name", "ユーザー名"),
    "users.password": ("Initial password (12+ characters)", "初期パスワード(12文字以上)"),
    "users.roles": ("Roles", "ロール"),
    "users.groups": ("Groups (comma-separated)", "グループ(カンマ区切り)"),
    "users.must_change": (
        "Must change the password at first sign-in",
        "初回ログイン時にパスワード変更を求める",
    ),
    "users.create": ("Create user", "ユーザーを作成"),
    "users.created": ("Created {name}.", "{name} を作成しました。"),
    "users.edit": ("Change a user", "ユーザーを変更"),
    "users.save": ("Save roles and groups", "ロールとグループを保存"),
    "users.saved": ("Saved.", "保存しました。"),
    "users.disable": ("Disable account", "アカウントを無効化"),
    "users.enable": ("Enable account", "アカウントを有効化"),
    "users.unlock": ("Unlock after failed sign-ins", "ロックを解除"),
    "users.reset": ("Set a new password", "新しいパスワードを設定"),
    "users.disabled": ("disabled", "無効"),
    # admin: system
    "system.title": ("System", "システム"),
    "system.models": ("Models", "モデル"),
    "system.load_models": ("Load and show models", "モデルを読み込んで表示"),
    "system.health": ("Health", "状態"),
    "system.backup": ("Backup", "バックアップ"),
    "system.backup_help": (
        "Writes everything the data directory holds (store, databases, uploads, model list, audit log) "
        "with a checksum list while kura keeps running. Give a new, empty folder; copy it off this server afterwards.",
        "kura を止めずに、データディレクトリの全内容(ストア・データベース・アップロード・モデル一覧・監査ログ)と"
        "チェックサム一覧を書き出します。新しい空のフォルダーを指定し、終わったらこのサーバーの外へコピーしてください。",
    ),
    "system.backup_dest": ("Destination folder", "保存先フォルダー"),
    "system.backup_now": ("Back up now", "今すぐバックアップ"),
    "system.backup_running": ("Backing up…", "バックアップ中…"),
    "system.backup_absolute": (
        "Give the destination as an absolute folder path, e.g. {example}.",
        "保存先はフォルダーの絶対パスで指定してください(例: {example})。",
    ),
    "system.backup_not_empty": (
        "{path} is not empty: give a new folder for each backup.",
        "{path} は空ではありません。バックアップごとに新しいフォルダーを指定してください。",
    ),
    "system.backup_done": (
        "Backup written to {path}: {files} files, {size}, {chunks} chunks. "
        "Checksum list: {sums} (restore checks it: kura restore {path}).",
        "{path} にバックアップしました: {files} ファイル、{size}、{chunks} チャンク。"
        "チェックサム一覧: {sums}(復元時に検証されます: kura restore {path})。",
    ),
    # admin: system, scheduled backups (issue 30)
    "system.backup_schedule": (
        "Scheduled backups: every {every} into {folder}, the newest {keep} kept.",
        "定期バックアップ: {every} ごとに {folder} へ保存し、最新 {keep} 件を保持します。",
    ),
    "system.backup_unscheduled": (
        "Scheduled backups are off (set `KURA_BACKUP_EVERY`, e.g. 24h).",
        "定期バックアップは無効です(`KURA_BACKUP_EVERY` を設定してください。例: 24h)。",
    ),
    "system.backup_last": ("Newest good backup: {when} ({age} ago).", "最新の正常なバックアップ: {when}({age} 前)。"),
    "system.backup_none": ("No good backup is known yet.", "正常なバックアップはまだありません。"),
    "system.backup_overdue": (
        "Older than twice the schedule: look for alert entries in the audit log.",
        "スケジュールの 2 倍より古くなっています。監査ログのアラートを確認してください。",
    ),
    "system.backup_failed": (
        "The last scheduled backup failed: {reason}",
        "直近の定期バックアップが失敗しました: {reason}",
    ),
    "system.backup_without_key": (
        "Leave the audit key out (keep audit.key elsewhere; a restore asks for it)",
        "監査キーを含めない(audit.key は別の場所に保管し、復元時に指定します)",
    ),
    # auditor
    "audit.title": ("Audit log", "監査ログ"),
    "audit.reload": ("Reload", "再読み込み"),
    "audit.verify": ("Verify the hash chain", "ハッシュチェーンを検証"),
    "audit.intact": (
        "The audit log is intact: {n} entries, chain verified.",
        "監査ログは改ざんされていません({n} 件、検証済み)。",
    ),
    "audit.broken": (
        "The audit log was altered at {n} places. Keep a copy of the file and report it.",
        "監査ログが {n} か所で改ざんされています。ファイルの写しを保全し、報告してください。",
    ),
    "audit.user": ("User", "ユーザー"),
    "audit.action": ("Action", "操作"),
    "audit.text": ("Text in the question", "質問に含む文字"),
    "audit.from": ("From", "開始日"),
    "audit.to": ("To", "終了日"),
    "audit.count": ("{n} of {total} entries", "{total} 件中 {n} 件"),
    "audit.question": ("Question", "質問"),
    "audit.answer": ("Answer", "回答"),
    "audit.documents": ("Documents shown", "表示された文書"),
    "audit.csv": ("Download CSV", "CSV をダウンロード"),
    "audit.jsonl": ("Download JSON Lines", "JSON Lines をダウンロード"),
    # added for issue 17: every visible string in both languages
    "ask.unsupported": (
        "Not supported by your documents: this answer cites none of the passages it was given "
        "in a way they support. Check the passages below before relying on it.",
        "文書による裏付けがありません: この回答は、与えられた文書箇所を裏付けのある形で引用していません。"
        "利用する前に下の箇所を確認してください。",
    ),
    "ask.uncited_mark": ("no source", "出典なし"),
    # issue 25: evidence first
    "ask.writing": (
        "Writing an answer and checking it against the passages…",
        "回答を作成し、資料と照合しています…",
    ),
    "ask.withheld_text": ("The withheld text", "表示しなかった回答"),
    "ask.related": ("Related reading", "関連資料"),
    "nav.passage": ("Cited passage", "引用箇所"),
    "passage.title": ("Cited passage", "引用箇所"),
    "passage.none": (
        "There is no passage to show here among the documents you may read.",
        "閲覧可能な文書の中に、ここで表示できる箇所はありません。",
    ),
    "ask.no_sources": ("The answer cites no passage.", "回答は文書箇所を引用していません。"),
    "ask.also_retrieved": ("Also retrieved (not cited)", "その他の検索結果(引用なし)"),
    "ask.queue": (
        "Waiting for the language model: you are number {n} in line.",
        "言語モデルの順番待ちです: あなたは {n} 番目です。",
    ),
    "ask.queue_full": (
        "kura is busy answering other questions (you would be number {n}; the line holds "
        "{limit}). Try again in a minute.",
        "kura は他の質問に回答中で混み合っています({limit} 件の待ちがいっぱいで、{n} 番目になります)。"
        "1分ほどしてからもう一度お試しください。",
    ),
    "ingest.col.file": ("File", "ファイル"),
    "ingest.col.status": ("Status", "状態"),
    "ingest.col.chunks": ("Chunks", "チャンク"),
    "ingest.col.pages": ("Pages", "ページ"),
    "ingest.col.reason": ("Reason", "理由"),
    "ingest.col.hint": ("What to do", "対処方法"),
    "ingest.status.ingested": ("ingested", "取り込み済み"),
    "ingest.status.linked": ("linked", "リンク"),
    "ingest.status.unchanged": ("unchanged", "変更なし"),
    "ingest.status.removed": ("removed", "削除"),
    "ingest.status.failed": ("failed", "失敗"),
    "docs.col.title": ("Title", "タイトル"),
    "docs.col.status": ("Status", "状態"),
    "docs.col.type": ("Type", "形式"),
    "docs.col.size": ("Size (KB)", "サイズ(KB)"),
    "docs.col.pages": ("Pages", "ページ"),
    "docs.col.chunks": ("Chunks", "チャンク"),
    "docs.col.groups": ("Groups", "グループ"),
    "docs.col.ingested": ("Ingested", "取り込み日時"),
    "docs.col.paths": ("Paths", "パス"),
    "docs.col.id": ("ID", "ID"),
    "docs.status.indexed": ("indexed", "登録済み"),
    "docs.status.orphaned": ("orphaned", "参照なし"),
    "feedback.col.when": ("When", "日時"),
    "feedback.col.user": ("User", "ユーザー"),
    "feedback.col.helpful": ("Helpful", "評価"),
    "feedback.col.question": ("Question", "質問"),
    "feedback.col.answer": ("Answer", "回答"),
    "feedback.col.cited": ("Cited", "引用"),
    "users.col.name": ("Name", "名前"),
    "users.col.roles": ("Roles", "ロール"),
    "users.col.groups": ("Groups", "グループ"),
    "users.col.status": ("Status", "状態"),
    "users.col.source": ("Source", "提供元"),
    "users.col.synced": ("Groups from the directory", "ディレクトリのグループ"),
    "users.col.extra": ("Extra groups (local)", "追加グループ(ローカル)"),
    "users.col.last_synced": ("Last synced", "最終同期"),
    "users.directory_managed": (
        "{name} is a {source} account: roles, groups and password come from the directory; roles and "
        "groups are read again at every sign-in (LDAP accounts also by `kura users sync`). Extra "
        "groups below are added on top and audited.",
        "{name} は {source} アカウントです。ロール・グループ・パスワードはディレクトリが管理し、"
        "ロールとグループはログインのたびに更新されます(LDAP アカウントは `kura users sync` でも)。"
        "下の追加グループはその上に加えられ、監査ログに残ります。",
    ),
    "users.extra_groups": ("Extra groups (comma-separated)", "追加グループ(カンマ区切り)"),
    "users.save_extra": ("Save extra groups", "追加グループを保存"),
    "system.documents": ("Documents", "文書"),
    "system.chunks": ("Chunks", "チャンク"),
    "system.store": ("Store", "ストア"),
    "system.disk_free": ("Disk free", "ディスク空き"),
    "system.details": (
        "Data directory: {data} · files {files} · audit entries {entries}",
        "データディレクトリ: {data}・ファイル {files}・監査エントリ {entries}",
    ),
    "audit.col.seq": ("No.", "番号"),
    "audit.col.time": ("Time", "日時"),
    "audit.col.user": ("User", "ユーザー"),
    "audit.col.action": ("Action", "操作"),
    "audit.col.question": ("Question", "質問"),
    "audit.col.documents": ("Documents", "文書"),
    "audit.col.entry": ("Entry", "エントリ"),
    "audit.col.problem": ("Problem", "問題"),
    "audit.doc.groups": ("Readable by", "閲覧グループ"),
    "audit.doc.gone": ("(deleted since)", "(その後削除)"),
    "audit.cited": ("Cited in the answer", "回答で引用された箇所"),
    # ingestion jobs and watched folders (app/doors/ui/views/jobs.py)
    "jobs.title": ("Ingestion jobs", "取り込みジョブ"),
    "jobs.none": ("No jobs yet.", "ジョブはまだありません。"),
    "jobs.cancel": ("Cancel job", "ジョブを取り消す"),
    "jobs.cancel_which": ("Job to cancel", "取り消すジョブ"),
    "jobs.cancelled": ("Cancel requested for job {id}.", "ジョブ {id} の取り消しを要求しました。"),
    "jobs.running": (
        "Job {id} · {done}/{total} files · {pages} pages · {rate:.1f} chunks/s · {current}",
        "ジョブ {id} · {done}/{total} ファイル · {pages} ページ · {rate:.1f} チャンク/秒 · {current}",
    ),
    "jobs.eta": (" · about {eta:.0f} s left", " · 残り約 {eta:.0f} 秒"),
    "jobs.watched": ("Watched folders", "監視フォルダー"),
    "jobs.watched_none": ("No watched folders.", "監視フォルダーはありません。"),
    "jobs.watch_path": ("Folder on the server", "サーバー上のフォルダー"),
    "jobs.watch_groups": ("Groups that may read it", "閲覧できるグループ"),
    "jobs.watch_every": ("Re-sync every (e.g. 15m, 2h)", "再同期の間隔(例: 15m, 2h)"),
    "jobs.watch_add": ("Watch folder", "フォルダーを監視"),
    "jobs.watch_added": ("Watching {path}.", "{path} を監視しています。"),
    "jobs.watch_remove": ("Stop watching", "監視をやめる"),
    "jobs.watch_removed": ("Stopped watching {path}.", "{path} の監視をやめました。"),
    "jobs.col.job": ("Job", "ジョブ"),
    "jobs.col.kind": ("Kind", "種類"),
    "jobs.col.target": ("Target", "対象"),
    "jobs.col.by": ("Submitted by", "依頼者"),
    "jobs.col.state": ("State", "状態"),
    "jobs.col.submitted": ("Submitted", "依頼日時"),
    "jobs.col.files": ("Files", "ファイル"),
    "jobs.col.chunks_per_s": ("Chunks/s", "チャンク/秒"),
    "jobs.col.report": ("Report", "結果"),
    "jobs.col.folder": ("Folder", "フォルダー"),
    "jobs.col.groups": ("Groups", "グループ"),
    "jobs.col.every": ("Every", "間隔"),
    "jobs.col.last_run": ("Last run", "前回の実行"),
    "jobs.col.next_run": ("Next run", "次回の実行"),
    "jobs.col.last_job": ("Last job", "前回のジョブ"),
    "jobs.col.last_report": ("Last report", "前回の結果"),
    # personal API keys (app/doors/ui/views/keys.py) and the audited audit export
    "nav.keys": ("API keys", "APIキー"),
    "nav.section.account": ("Your account", "アカウント"),
    "signin.needed": ("Sign in to open this page.", "このページを開くにはログインしてください。"),
    "keys.title": ("Personal API keys", "個人用APIキー"),
    "keys.intro": (
        "A key lets a script or tool call kura's HTTP API as you: with your groups and roles, "
        "never more, and only within its scope. Revoke a key you no longer use.",
        "キーを使うと、スクリプトやツールがあなたとして kura の HTTP API を呼び出せます。"
        "権限はあなたのグループとロールの範囲内で、さらにキーのスコープに限られます。"
        "使わなくなったキーは失効させてください。",
    ),
    "keys.new": ("Create a key", "キーを作成"),
    "keys.name": ("What the key is for (a name)", "用途(キーの名前)"),
    "keys.scope": ("Scope", "スコープ"),
    "keys.scope.read": ("read: search and ask", "read: 検索と質問"),
    "keys.scope.admin": ("admin: documents, ingestion, users", "admin: 文書・取り込み・ユーザー管理"),
    "keys.scope.audit": ("audit: read and export the audit log", "audit: 監査ログの閲覧とエクスポート"),
    "keys.expires_days": ("Expires after days (0: never)", "有効期限(日数、0 は無期限)"),
    "keys.create": ("Create key", "キーを作成"),
    "keys.created": ("Created key {id} ({name}).", "キー {id}({name})を作成しました。"),
    "keys.once": (
        "Copy this key now and keep it secret: it is shown only this once. "
        "kura stores only a hash of it and cannot show it again.",
        "このキーを今すぐコピーし、秘密にしてください。表示されるのはこの一度だけです。"
        "kura はハッシュしか保存しないため、再表示できません。",
    ),
    "keys.yours": ("Your keys", "あなたのキー"),
    "keys.everyone": ("Every account's keys", "全アカウントのキー"),
    "keys.none": ("No keys yet.", "キーはまだありません。"),
    "keys.never": ("never", "無期限"),
    "keys.revoke_pick": ("Key to revoke", "失効させるキー"),
    "keys.revoke": ("Revoke key", "キーを失効"),
    "keys.revoked": ("Revoked key {id} ({name}) of {owner}.", "{owner} のキー {id}({name})を失効させました。"),
    "keys.state.active": ("active", "有効"),
    "keys.state.expired": ("expired", "期限切れ"),
    "keys.state.revoked": ("revoked {at}", "失効 {at}"),
    "keys.col.id": ("ID", "ID"),
    "keys.col.owner": ("Owner", "所有者"),
    "keys.col.name": ("Name", "名前"),
    "keys.col.scope": ("Scope", "スコープ"),
    "keys.col.created": ("Created", "作成日時"),
    "keys.col.expires": ("Expires", "有効期限"),
    "keys.col.last_used": ("Last used", "最終使用"),
    "keys.col.state": ("State", "状態"),
    "audit.export.format": ("Export format", "エクスポート形式"),
    "audit.export.csv": ("CSV (spreadsheet)", "CSV(表計算ソフト用)"),
    "audit.export.jsonl": ("JSON Lines (SIEM, lossless)", "JSON Lines(SIEM 用、完全)"),
    "audit.export.prepare": ("Prepare export", "エクスポートを準備"),
    "audit.export.ready": (
        "{n} entries exported (this export is recorded in the audit log).",
        "{n} 件をエクスポートしました(このエクスポートは監査ログに記録されます)。",
    ),
    "audit.export.one_each": (
        "An export takes at most one user and one action, plus the dates: narrow the choice to export.",
        "エクスポートで指定できるのはユーザー1人と操作1つ、および日付です。絞り込んでからエクスポートしてください。",
    ),
    "audit.export.no_text": (
        "The export uses the user, action and date filters; the text filter applies to this page only.",
        "エクスポートにはユーザー・操作・日付の絞り込みが使われます。文字の絞り込みはこの画面のみです。",
    ),
    "ui.choose": ("Choose one or more", "選択してください"),
    # errors
    "error.generic": (
        "Something went wrong: {detail}. Try again; if it persists, tell an admin "
        "(details are in the server log).",
        "問題が発生しました: {detail}。もう一度お試しください。"
        "続く場合は管理者に連絡してください(詳細はサーバーログにあります)。",
    ),
    "error.denied": ("Not allowed: {detail}", "権限がありません: {detail}"),
    # the auditor's workbench (issue 27: app/doors/ui/views/workbench.py) and the log page's entry view
    "nav.workbench": ("Audit workbench", "監査ワークベンチ"),
    "audit.intact.chain": ("The audit log is intact: chain verified.", "監査ログは改ざんされていません(検証済み)。"),
    "audit.entry.proof": (
        "Entry #{seq}: hash made with the audit key: {authentic} · links to the entry before: {linked} · "
        "the entry after links to it: {next}",
        "エントリ #{seq}: 監査鍵によるハッシュ: {authentic} · 直前のエントリへの連結: {linked} · "
        "直後のエントリからの連結: {next}",
    ),
    "audit.yes.True": ("yes", "はい"),
    "audit.yes.False": ("NO", "いいえ"),
    "audit.yes.None": ("(newest entry)", "(最新のエントリ)"),
    "wb.entry.close": ("Close the entry", "エントリを閉じる"),
    "wb.title": ("Audit workbench", "監査ワークベンチ"),
    "wb.view": ("View", "表示"),
    "wb.view.overview": ("Overview", "概要"),
    "wb.view.who_saw": ("Who saw what", "誰が何を見たか"),
    "wb.view.alerts": ("Alerts", "アラート"),
    "wb.view.reports": ("Reports", "レポート"),
    "wb.from": ("From", "開始日"),
    "wb.to": ("To", "終了日"),
    "wb.none": ("Nothing in this period.", "この期間には何もありません。"),
    "wb.count": ("Count", "件数"),
    "wb.m.questions": ("Questions", "質問"),
    "wb.m.searches": ("Searches", "検索"),
    "wb.m.refusals": ("Refusals and denials", "拒否"),
    "wb.m.refused": ("Refused", "拒否(処理)"),
    "wb.m.denied": ("Denied", "拒否(権限)"),
    "wb.m.nothing": ("Questions that found nothing", "何も見つからなかった質問"),
    "wb.m.unsupported": ("Answers marked unsupported", "根拠なしと判定された回答"),
    "wb.m.feedback": ("Feedback helpful / not", "フィードバック 役立った / 役立たず"),
    "wb.per_day": ("Per day", "日別"),
    "wb.per_user": ("Questions and searches per person", "人別の質問・検索"),
    "wb.per_group": ("Showings per document group", "文書グループ別の表示回数"),
    "wb.per_department": ("Questions and searches per department (the askers' groups)",
                          "部門別の質問・検索(質問者のグループ)"),
    "wb.busiest": ("Busiest documents", "よく表示された文書"),
    "wb.col.document": ("Document", "文書"),
    "wb.col.id": ("Id", "ID"),
    "wb.col.shown": ("Shown", "表示回数"),
    "wb.col.entry": ("Entry", "エントリ"),
    "wb.col.time": ("Time (UTC)", "日時(UTC)"),
    "wb.col.person": ("Person", "人"),
    "wb.col.action": ("Action", "操作"),
    "wb.col.groups": ("Its groups then", "当時のグループ"),
    "wb.col.question": ("Question", "質問"),
    "wb.col.first": ("First", "最初"),
    "wb.col.last": ("Last", "最後"),
    "wb.col.rule": ("Rule", "ルール"),
    "wb.col.subject": ("Who / what", "対象"),
    "wb.col.count": ("Events", "件数"),
    "wb.col.alert": ("Alert", "アラート"),
    "wb.kind": ("Whose reading", "対象"),
    "wb.kind.document": ("A document", "文書"),
    "wb.kind.folder": ("A folder", "フォルダー"),
    "wb.kind.group": ("A group", "グループ"),
    "wb.kind.person": ("A person", "人"),
    "wb.target.document": ("Document (part of its path, or its id)", "文書(パスの一部または ID)"),
    "wb.target.folder": ("Folder (as ingested)", "フォルダー(取り込み時のパス)"),
    "wb.target.group": ("Group", "グループ"),
    "wb.target.person": ("Person (user name)", "人(ユーザー名)"),
    "wb.who_saw.hint": (
        "Name a document, a folder, a group or a person: every showing of its passages (in an answer, a search, "
        "a preview or an export) is listed with the question, and each row links to its audit entry.",
        "文書・フォルダー・グループ・人を指定してください。その文書の箇所が示されたすべての記録(回答・検索・"
        "プレビュー・エクスポート)を質問とともに一覧し、各行は監査ログのエントリにリンクします。",
    ),
    "wb.who_saw.count": (
        "{n} showings to {people} people; the newest {shown} are listed.",
        "{people} 人に {n} 回表示。新しい順に {shown} 件を表示しています。",
    ),
    "wb.people": ("People", "人"),
    "wb.groups_seen": ("Groups whose documents they were shown", "表示された文書のグループ"),
    "wb.documents_seen": ("Documents they were shown", "表示された文書"),
    "wb.alerts.check": ("Check the rules now", "今すぐルールを確認"),
    "wb.alerts.count": (
        "{n} alerts. Each is an entry of the audit log, forwarded to the SIEM like every entry.",
        "アラート {n} 件。各アラートは監査ログのエントリで、他のエントリと同様に SIEM へ転送されます。",
    ),
    "wb.alerts.unrecorded": ("not written: the log's end is broken", "未記録: ログ末尾が破損"),
    "wb.rules": ("Rules", "ルール"),
    "wb.rule": ("Rule", "ルール"),
    "wb.rule.refusals": ("Refusals or denials of one person", "1人への拒否の多発"),
    "wb.rule.after_hours": ("Questions outside working hours", "業務時間外の質問"),
    "wb.rule.stale_group": ("Shown a group's document without holding the group",
                            "所属していないグループの文書の表示"),
    "wb.rule.new_address": ("API key used from a new address", "新しいアドレスからの API キー使用"),
    "wb.rule.chain": ("A gap or failure in the hash chain", "ハッシュチェーンの欠落・不整合"),
    "wb.threshold": ("Threshold (events)", "しきい値(件数)"),
    "wb.window": ("Window (seconds)", "期間(秒)"),
    "wb.enabled": ("On", "有効"),
    "wb.rule.save": ("Save the rule", "ルールを保存"),
    "wb.rule.saved": ("Saved: {rule} (recorded in the audit log).", "保存しました: {rule}(監査ログに記録)。"),
    "wb.report.group": ("Group", "グループ"),
    "wb.report.month": ("Month", "月"),
    "wb.report.format": ("Format", "形式"),
    "wb.report.prepare": ("Prepare the report", "レポートを作成"),
    "wb.report.hint": (
        "A group's month: questions, people, documents shown, refusals, alerts. Producing it is audited.",
        "グループの月次レポート: 質問・人数・表示文書・拒否・アラート。作成は監査ログに記録されます。",
    ),
    "wb.report.questions": ("Questions and searches", "質問・検索"),
    "wb.report.people": ("People", "人数"),
    "wb.report.documents": ("Documents shown", "表示文書"),
    "wb.report.shows": ("Showings", "表示回数"),
    "wb.report.refusals": ("Refusals", "拒否"),
    "wb.report.alerts": ("Alerts", "アラート"),
    "wb.report.download.csv": ("Download the CSV", "CSV をダウンロード"),
    "wb.report.download.html": ("Download the printable page", "印刷用ページをダウンロード"),
    # saved conversations (issue 26): the Ask page's sidebar and the open conversation
    "conv.sidebar": ("Your conversations", "あなたの会話"),
    "conv.search": ("Search your conversations", "会話を検索"),
    "conv.none": ("No saved conversations yet.", "保存された会話はまだありません。"),
    "conv.no_match": ("No conversation of yours matches.", "一致する会話はありません。"),
    "conv.found.title": ("in the title", "タイトル"),
    "conv.found.question": ("in a question", "質問"),
    "conv.found.answer": ("in an answer", "回答"),
    "conv.private": (
        "Only you can see your conversations.", "会話はあなただけが閲覧できます。"
    ),
    "conv.retention": (
        "Conversations are deleted {days} days after their last question.",
        "会話は最後の質問から {days} 日後に削除されます。",
    ),
    "conv.manage": ("This conversation", "この会話"),
    "conv.title": ("Title", "タイトル"),
    "conv.rename": ("Rename", "名前を変更"),
    "conv.delete.confirm": ("Yes, delete this conversation", "この会話を削除する"),
    "conv.delete": ("Delete", "削除"),
    "conv.deleted": ("Conversation deleted.", "会話を削除しました。"),
    "conv.all": ("All your conversations", "すべての会話"),
    "conv.export.format": ("Export format", "エクスポート形式"),
    "conv.export.prepare": ("Prepare export", "エクスポートを準備"),
    "conv.export.download": ("Download", "ダウンロード"),
    "conv.delete_all.confirm": ("Yes, delete all my conversations", "すべての会話を削除する"),
    "conv.delete_all": ("Delete all", "すべて削除"),
    "conv.deleted_all": ("{n} conversations deleted.", "{n} 件の会話を削除しました。"),
    "conv.not_found": (
        "That conversation is not among yours. Start a new one or pick one in the sidebar.",
        "その会話は見つかりません。新しい会話を始めるか、サイドバーから選んでください。",
    ),
    "conv.asked_at": ("Asked {at}", "{at} の質問"),
    "users.delete": ("Delete account", "アカウントを削除"),
    "users.delete.confirm": (
        "Yes, delete {name}: sessions end, API keys stop working, saved conversations are deleted",
        "{name} を削除する(セッションは終了し、API キーは無効になり、保存された会話は削除されます)",
    ),
    "users.deleted": (
        "{name} deleted, with {n} saved conversations.", "{name} と保存された会話 {n} 件を削除しました。"
    ),
}


def t(key: str, lang: str = "en", **fields: object) -> str:
    """The UI text for `key` in `lang` ('en' or 'ja'), with `fields` filled in."""
    english, japanese = _TEXT[key]
    text = japanese if lang == "ja" else english
    return text.format(**fields) if fields else text


def keys() -> list[str]:
    return sorted(_TEXT)
